/* The page a server with a token shows before the token was given: trade it for the
   session cookie (POST /api/session), then load the page that was asked for. */
(function () {
  var form = document.getElementById("unlock");
  if (!form) return;
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    var token = document.getElementById("token").value.trim();
    fetch("/api/session", {
      method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
      body: JSON.stringify({ token: token })
    }).then(function (resp) {
      if (resp.ok) {
        sessionStorage.setItem("headwater-token", token);
        window.location.reload();
      } else {
        document.getElementById("unlock-error").hidden = false;
      }
    });
  });
})();
