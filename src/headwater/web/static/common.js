/* Headwater web UI: the server's helpers, the live-run indicator and the run buttons, on
   top of the helpers the docs site shares (/assets/shared.js, loaded first). No library. */
(function () {
  "use strict";
  var HW = window.HW;
  var listeners = {};
  var TOKEN_KEY = "headwater-token";

  HW.KIND = { source: "source", sql: "SQL", python: "Python", sink: "sink" };
  HW.nodeHref = function (name) { return "/nodes/" + encodeURIComponent(name); };
  HW.rows = function (n) { return n === null || n === undefined ? "—" : Number(n).toLocaleString("en"); };
  HW.seconds = function (s) {
    if (s === null || s === undefined) return "—";
    return s < 60 ? s.toFixed(2) + " s" : (s / 60).toFixed(1) + " min";
  };
  HW.time = function (iso) {
    if (!iso) return "—";
    var d = new Date(iso);
    return isNaN(d) ? iso : d.toLocaleString();
  };
  HW.badge = function (text, cls, title) {
    return HW.el("span", { cls: "badge " + (cls || ""), text: text, title: title || null });
  };

  HW.flash = function (text, isError) {
    var f = document.getElementById("flash");
    f.textContent = text;
    f.className = "flash" + (isError ? " error" : "");
    f.hidden = false;
    clearTimeout(HW._flashTimer);
    HW._flashTimer = setTimeout(function () { f.hidden = true; }, isError ? 9000 : 4000);
  };

  function failure(resp) {
    return resp.json().catch(function () { return {}; }).then(function (body) {
      var err = new Error(body.error || body.detail && JSON.stringify(body.detail) || resp.statusText);
      err.status = resp.status;
      err.hint = body.hint || null;
      throw err;
    });
  }
  /* With a token, the server wants it on every API request: the page asks for it once,
     trades it for a session cookie (POST /api/session) and tries again. */
  var asking = null;
  function login() {
    if (!asking) {
      asking = new Promise(function (resolve) {
        var given = window.prompt("This server needs its token:");
        if (!given) { resolve(false); return; }
        sessionStorage.setItem(TOKEN_KEY, given.trim());
        fetch("/api/session", {
          method: "POST", headers: { "Content-Type": "application/json", Accept: "application/json" },
          body: JSON.stringify({ token: given.trim() })
        }).then(function (resp) { resolve(resp.ok); }, function () { resolve(false); });
      }).then(function (ok) { asking = null; return ok; });
    }
    return asking;
  }
  HW.api = function (path, retried) {
    return fetch(path, { headers: { Accept: "application/json" } }).then(function (resp) {
      if (resp.status === 401 && !retried) {
        return login().then(function (ok) { return ok ? HW.api(path, true) : failure(resp); });
      }
      return resp.ok ? resp.json() : failure(resp);
    });
  };
  HW.post = function (path, body, retried) {
    var headers = { "Content-Type": "application/json", Accept: "application/json" };
    var token = sessionStorage.getItem(TOKEN_KEY);
    if (token) headers["X-Headwater-Token"] = token;
    return fetch(path, { method: "POST", headers: headers, body: JSON.stringify(body || {}) })
      .then(function (resp) {
        if (resp.status === 401 && !retried) {
          sessionStorage.removeItem(TOKEN_KEY);
          return login().then(function (ok) {
            return ok ? HW.post(path, body, true) : failure(resp);
          });
        }
        return resp.ok ? resp.json() : failure(resp);
      });
  };
  HW.message = function (err) { return err.message + (err.hint ? "\nhint: " + err.hint : ""); };

  /* ---- starting runs ------------------------------------------------------------------- */
  HW.startRun = function (select, fullRefresh) {
    var body = { select: select || null, full_refresh: !!fullRefresh };
    setButtons(true);
    return HW.post("/api/runs", body).then(function (job) {
      HW.flash("run " + (job.run_id || "") + " started: " + (select || "the whole project"));
      return job;
    }).catch(function (err) {
      setButtons(false);
      HW.flash(HW.message(err), true);
    });
  };
  function setButtons(disabled) {
    HW.each(document.querySelectorAll("button[data-select]"), function (b) {
      b.disabled = disabled;
    });
  }
  document.addEventListener("click", function (ev) {
    var b = ev.target.closest && ev.target.closest("button[data-select]");
    if (!b) return;
    var full = document.getElementById("full-refresh");
    HW.startRun(b.getAttribute("data-select"), full && full.checked);
  });

  /* ---- live events ------------------------------------------------------------------- */
  HW.on = function (type, fn) { (listeners[type] = listeners[type] || []).push(fn); };
  function emit(type, data) { (listeners[type] || []).forEach(function (fn) { fn(data); }); }
  HW.run = null; // the server's current (or last) run, kept up to date from the events

  function showLive() {
    var live = document.getElementById("live");
    var run = HW.run;
    live.className = "live idle";
    if (!run) { live.textContent = "no run in progress"; return; }
    var nodes = run.nodes || [];
    var done = nodes.filter(function (n) { return ["done", "skipped", "failed"].indexOf(n.state) >= 0; }).length;
    var running = nodes.filter(function (n) { return n.state === "running"; }).map(function (n) { return n.name; });
    var id = run.run_id ? run.run_id.slice(0, 8) : "";
    if (run.status === "planning" || run.status === "running") {
      live.className = "live active";
      live.textContent = "run " + id + ": " + done + "/" + nodes.length +
        (running.length ? " · " + running.slice(0, 2).join(", ") + (running.length > 2 ? " …" : "") : "");
      setButtons(true);
    } else {
      live.className = "live " + (run.status === "success" ? "success" : "failed");
      live.textContent = "last run " + id + ": " + run.status;
      setButtons(false);
    }
    live.href = run.run_id ? "/runs/" + encodeURIComponent(run.run_id) : "/runs";
  }
  function node(name) {
    if (!HW.run) return null;
    for (var i = 0; i < HW.run.nodes.length; i++) if (HW.run.nodes[i].name === name) return HW.run.nodes[i];
    var n = { name: name };
    HW.run.nodes.push(n);
    return n;
  }
  var handlers = {
    hello: function (d) { HW.run = d.run; },
    run_requested: function (d) { HW.run = d; },
    run_started: function (d) { HW.run = d; },
    node_started: function (d) { var n = node(d.name); if (n) { n.state = "running"; n.started_at = d.started_at; } },
    node_finished: function (d) { var n = node(d.name); if (n) Object.keys(d).forEach(function (k) { n[k] = d[k]; }); },
    run_finished: function (d) { if (HW.run) { HW.run.status = d.status; HW.run.run_id = d.run_id; } },
    run_error: function (d) { HW.run = d; HW.flash("the run could not go on: " + d.error + (d.hint ? "\nhint: " + d.hint : ""), true); }
  };
  HW.connect = function () {
    if (!window.EventSource) return;
    // an event stream refused (401) is never retried by the browser: log in first
    HW.api("/api/info").then(openEvents, openEvents);
  };
  function openEvents() {
    var source = new EventSource("/api/events");
    Object.keys(handlers).forEach(function (type) {
      source.addEventListener(type, function (ev) {
        var data = JSON.parse(ev.data);
        handlers[type](data);
        showLive();
        emit(type, data);
      });
    });
    HW.source = source;
  }

  var page = document.body.getAttribute("data-page");
  var current = document.querySelector('header nav a[data-nav="' + (page === "node" ? "graph" : page) + '"]');
  if (current) current.classList.add("current");
  if (page !== "locked") HW.connect();  // the locked page asks for the token in its form
})();
