/* The runs page: recent runs and a timeline (Gantt) of one run's nodes, live while it runs. */
(function () {
  "use strict";
  var E = HW.el;
  var page = document.getElementById("runs-page");
  var selected = page.getAttribute("data-run") || null;
  var follow = !selected; // follow the newest run unless the URL names one
  var detail = null;

  function runTable(runs) {
    var body = HW.clear(document.querySelector("#run-table tbody"));
    if (!runs.length) {
      body.appendChild(E("tr", {}, [E("td", { colspan: 8, cls: "muted", text: "No runs yet: start one with the button above." })]));
    }
    runs.forEach(function (r) {
      var tr = E("tr", { "data-run": r.run_id, cls: r.run_id === selected ? "selected" : null }, [
        E("td", {}, [E("a", { href: "/runs/" + encodeURIComponent(r.run_id), text: r.run_id })]),
        E("td", {}, [HW.badge(r.status, "status-" + r.status)]),
        E("td", { text: HW.time(r.started_at) }),
        E("td", { cls: "num", text: r.seconds === null ? "—" : r.seconds.toFixed(2) }),
        E("td", { text: r.selection || "everything" }),
        E("td", { cls: "num", text: String(r.counts.executed || 0) }),
        E("td", { cls: "num", text: String(r.counts.skipped || 0) }),
        E("td", { cls: "num", text: String(r.counts.failed || 0) })
      ]);
      tr.addEventListener("click", function (ev) {
        if (ev.target.closest("a")) return;
        selected = r.run_id; follow = false;
        history.replaceState(null, "", "/runs/" + encodeURIComponent(r.run_id));
        loadRun();
      });
      body.appendChild(tr);
    });
  }

  function ms(iso) { return iso ? new Date(iso).getTime() : null; }

  /* Bars: nodes that did work (executed or failed), plus those running now in a live run. */
  function gantt(run, nodes, live) {
    var box = HW.clear(document.getElementById("timeline"));
    var now = Date.now();
    var bars = nodes.filter(function (n) { return n.started_at; }).map(function (n) {
      var state = n.state || (n.status === "executed" ? "done" : n.status);
      return { name: n.node || n.name, start: ms(n.started_at), end: ms(n.ended_at) || now,
        state: state, rows: n.rows, seconds: n.seconds, running: !n.ended_at };
    });
    bars.sort(function (a, b) { return a.start - b.start || (a.name < b.name ? -1 : 1); });
    var skipped = nodes.filter(function (n) { return !n.started_at && ((n.status || n.state) === "skipped"); });
    var t0 = ms(run.started_at || run.requested_at) || (bars.length ? bars[0].start : now);
    var t1 = Math.max(ms(run.ended_at) || 0, live ? now : 0);
    bars.forEach(function (b) { t1 = Math.max(t1, b.end); t0 = Math.min(t0, b.start); });
    if (t1 <= t0) t1 = t0 + 1000;
    var summary = document.getElementById("timeline-summary");
    summary.textContent = (bars.length ? bars.length + (bars.length === 1 ? " node" : " nodes") + " did work" : "nothing was built") +
      (skipped.length ? ", " + skipped.length + " skipped (up to date or blocked)" : "") +
      " · " + ((t1 - t0) / 1000).toFixed(2) + " s" + (run.selection ? " · " + run.selection : "");
    if (!bars.length) { box.appendChild(E("p", { cls: "notice", text: "No node did any work in this run." })); return; }
    var LABEL_W = 230, W = Math.max(760, box.clientWidth - 10), ROW = 24, TOP = 26;
    var plotW = W - LABEL_W - 170; /* room for the duration after the last bar */
    var scale = plotW / (t1 - t0);
    var H = TOP + bars.length * ROW + 8;
    var svg = HW.svg("svg", { "class": "gantt", id: "gantt", width: W, height: H, viewBox: "0 0 " + W + " " + H,
      role: "img", "aria-label": "timeline of run " + (run.run_id || "") });
    var axis = HW.svg("g", { "class": "axis" });
    var span = (t1 - t0) / 1000, step = [0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600]
      .filter(function (s) { return span / s <= 10; })[0] || 3600;
    for (var s = 0; s <= span + 1e-9; s += step) {
      var x = LABEL_W + s * 1000 * scale;
      axis.appendChild(HW.svg("line", { x1: x, x2: x, y1: TOP - 6, y2: H }));
      axis.appendChild(HW.svg("text", { x: x + 2, y: TOP - 10, text: (step < 1 ? s.toFixed(1) : Math.round(s)) + " s" }));
    }
    svg.appendChild(axis);
    bars.forEach(function (b, i) {
      var y = TOP + i * ROW;
      var x = LABEL_W + (b.start - t0) * scale, w = Math.max(2, (b.end - b.start) * scale);
      var cls = "bar " + (b.running ? "running" : b.state === "failed" ? "failed" : b.state === "done" ? "done" : b.state);
      var g = HW.svg("g", { "class": "row", "data-node": b.name }, [
        HW.svg("rect", { "class": "lane", x: 0, y: y + 1, width: W, height: ROW - 2 }),
        HW.svg("a", { href: HW.nodeHref(b.name) }, [HW.svg("text", { "class": "label", x: 6, y: y + 16,
          text: b.name.length > 32 ? b.name.slice(0, 31) + "…" : b.name })]),
        HW.svg("rect", { "class": cls, x: x, y: y + 4, width: w, height: ROW - 8, rx: 3 }, [
          HW.svg("title", { text: b.name + ": " + (b.running ? "running" : b.state) + ", " +
            HW.seconds((b.end - b.start) / 1000) + (b.rows !== null && b.rows !== undefined ? ", " + HW.rows(b.rows) + " rows" : "") })]),
        HW.svg("text", { "class": "dur", x: x + w + 4, y: y + 16,
          text: b.running ? "running…" : HW.seconds((b.end - b.start) / 1000) + (b.rows !== null && b.rows !== undefined ? " · " + HW.rows(b.rows) + " rows" : "") })
      ]);
      svg.appendChild(g);
    });
    box.appendChild(svg);
  }

  function title(run, live) {
    var h = HW.clear(document.getElementById("timeline-title"));
    h.appendChild(document.createTextNode("Timeline of run " + (run.run_id || "…") + " "));
    h.appendChild(HW.badge(run.status, "status-" + run.status));
    if (live) h.appendChild(E("span", { cls: "muted small", text: " live" }));
  }

  function isLive() {
    var r = HW.run;
    return r && (r.status === "running" || r.status === "planning") && (!selected || r.run_id === selected || follow);
  }

  function drawLive() {
    var r = HW.run;
    title(r, true);
    gantt(r, r.nodes, true);
  }

  function loadRun() {
    Array.prototype.forEach.call(document.querySelectorAll("#run-table tr[data-run]"), function (tr) {
      tr.classList.toggle("selected", tr.getAttribute("data-run") === selected);
    });
    if (isLive()) { drawLive(); return Promise.resolve(); }
    if (!selected) return Promise.resolve();
    return HW.api("/api/runs/" + encodeURIComponent(selected)).then(function (d) {
      detail = d;
      title(d, false);
      gantt(d, d.nodes, false);
    }).catch(function (err) {
      HW.clear(document.getElementById("timeline")).appendChild(E("pre", { cls: "error", text: HW.message(err) }));
    });
  }

  function load() {
    return HW.api("/api/runs?limit=30").then(function (runs) {
      if (follow && runs.length) selected = runs[0].run_id;
      runTable(runs);
      if (!runs.length && !isLive()) {
        document.getElementById("timeline-summary").textContent = "No runs yet.";
        return;
      }
      return loadRun();
    }).catch(function (err) { HW.flash(HW.message(err), true); });
  }

  var ticker = null;
  function tick() {
    clearInterval(ticker);
    ticker = setInterval(function () { if (isLive()) drawLive(); else clearInterval(ticker); }, 500);
  }
  HW.on("hello", function () { if (isLive()) { drawLive(); tick(); } });
  HW.on("run_started", function (d) {
    if (follow) selected = d.run_id;
    if (isLive()) { drawLive(); tick(); }
    load();
  });
  HW.on("node_started", function () { if (isLive()) drawLive(); });
  HW.on("node_finished", function () { if (isLive()) drawLive(); });
  HW.on("run_finished", function (d) { if (follow) selected = d.run_id; load(); });
  HW.on("run_error", function () { load(); });
  load();
})();
