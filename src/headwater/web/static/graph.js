/* The pipeline graph: nodes coloured by status, pan and zoom, live updates. */
(function () {
  "use strict";
  var svg = document.getElementById("dag");
  var box = document.getElementById("dag-box");
  var vb = HW.viewBox(svg, box), fit = vb.fit, data = null;
  var KIND = HW.KIND;

  function draw(g) {
    data = g;
    HW.clear(svg);
    svg.appendChild(HW.svg("defs", {}, [HW.svg("marker", { id: "arrow", viewBox: "0 0 8 8", refX: 8, refY: 4,
      markerWidth: 6, markerHeight: 6, orient: "auto" }, [HW.svg("path", { d: "M0,0 L8,4 L0,8 z", "class": "arrowhead" })])]));
    var edges = HW.svg("g", { "class": "edges" });
    g.edges.forEach(function (e) {
      edges.appendChild(HW.svg("path", { "class": "edge", d: e.d, "data-from": e.from, "data-to": e.to,
        "marker-end": "url(#arrow)" }));
    });
    var nodes = HW.svg("g", { "class": "nodes" });
    g.nodes.forEach(function (n) {
      var label = n.name.length * 7.6 + 24 > n.w ? n.name.slice(0, Math.max(4, Math.floor((n.w - 30) / 7.6))) + "…" : n.name;
      var a = HW.svg("a", { href: HW.nodeHref(n.name), "class": "node kind-" + n.kind + " status-" + n.status,
        "data-node": n.name, "data-status": n.status }, [
        HW.svg("title", { text: n.name + " (" + KIND[n.kind] + "): " + n.status + " — " + n.reason }),
        HW.svg("rect", { "class": "box", x: n.x, y: n.y, width: n.w, height: n.h, rx: 6 }),
        HW.svg("rect", { "class": "kind", x: n.x + 1, y: n.y + 1, width: 6, height: n.h - 2, rx: 3 }),
        HW.svg("text", { x: n.x + 12, y: n.y + n.h / 2 + 4, text: label })
      ]);
      a.addEventListener("mouseenter", function () { highlight(n.name); });
      a.addEventListener("mouseleave", function () { highlight(null); });
      nodes.appendChild(a);
    });
    var vp = HW.svg("g", { "class": "viewport" }, [edges, nodes]);
    svg.appendChild(vp);
    var first = vb.full === null;
    vb.full = [-10, -10, g.width, g.height];
    if (first) fit();
    table(g);
    summary(g);
  }

  function highlight(name) {
    HW.each(svg.querySelectorAll(".edge"), function (e) {
      e.classList.toggle("hl", !!name && (e.getAttribute("data-from") === name || e.getAttribute("data-to") === name));
    });
  }

  function summary(g) {
    var parts = [g.nodes.length + " nodes"];
    Object.keys(g.counts).forEach(function (s) { if (g.counts[s]) parts.push(g.counts[s] + " " + s); });
    document.getElementById("summary").textContent = parts.join(" · ") + " · env " + g.env;
  }

  function table(g) {
    var body = HW.clear(document.querySelector("#node-table tbody"));
    g.nodes.forEach(function (n) {
      var last = n.last_run;
      body.appendChild(HW.el("tr", { "data-node": n.name }, [
        HW.el("td", {}, [HW.el("a", { href: HW.nodeHref(n.name), text: n.name })]),
        HW.el("td", {}, [HW.badge(KIND[n.kind], "kind-" + n.kind)]),
        HW.el("td", {}, [HW.badge(n.status, "status-" + n.status)]),
        HW.el("td", { cls: "muted", text: n.reason }),
        HW.el("td", { cls: "num", text: HW.rows(n.rows) }),
        HW.el("td", { text: last ? last.status + " " + HW.time(last.ended_at) : "—" })
      ]));
    });
  }

  function setStatus(name, status) {
    var a = svg.querySelector('.node[data-node="' + CSS.escape(name) + '"]');
    if (!a) return;
    a.setAttribute("class", a.getAttribute("class").replace(/status-\w+/, "status-" + status));
    a.setAttribute("data-status", status);
  }

  var pending = null;
  function load() {
    return HW.api("/api/graph").then(draw).catch(function (err) {
      document.getElementById("summary").textContent = "";
      HW.clear(box).appendChild(HW.el("pre", { cls: "error", text: HW.message(err) }));
    });
  }
  function reload() { clearTimeout(pending); pending = setTimeout(load, 150); }

  /* ---- pan and zoom ------------------------------------------------------------------- */
  svg.addEventListener("wheel", function (ev) {
    ev.preventDefault();
    vb.zoom(ev.deltaY < 0 ? 0.85 : 1 / 0.85, ev.clientX, ev.clientY);
  }, { passive: false });
  var drag = null, moved = false;
  svg.addEventListener("mousedown", function (ev) {
    if (ev.button !== 0 || !vb.view) return;
    drag = { x: ev.clientX, y: ev.clientY, v: vb.view.slice() };
    moved = false;
  });
  window.addEventListener("mousemove", function (ev) {
    if (!drag) return;
    var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) { moved = true; svg.classList.add("dragging"); }
    vb.pan(drag.v, dx, dy);
  });
  window.addEventListener("mouseup", function () { drag = null; svg.classList.remove("dragging"); });
  svg.addEventListener("click", function (ev) { if (moved) { ev.preventDefault(); moved = false; } }, true);
  document.getElementById("zoom-in").addEventListener("click", function () { vb.zoom(0.8); });
  document.getElementById("zoom-out").addEventListener("click", function () { vb.zoom(1.25); });
  document.getElementById("fit").addEventListener("click", fit);

  /* ---- live ------------------------------------------------------------------------- */
  HW.on("hello", function (d) {
    if (d.run && d.run.status === "running") d.run.nodes.forEach(function (n) { if (n.state === "running") setStatus(n.name, "running"); });
  });
  HW.on("node_started", function (d) { setStatus(d.name, "running"); });
  HW.on("node_finished", function (d) {
    setStatus(d.name, d.state === "failed" ? "failed" : d.state === "done" || d.status === "skipped" && d.reason === "up to date" ? "fresh" : "stale");
  });
  HW.on("run_finished", reload);
  HW.on("run_error", reload);
  load();
  setInterval(function () { if (!document.hidden) load(); }, 30000);
})();
