/* Headwater docs: search, DAG pan/zoom, column lineage highlighting, on the helpers of
   shared.js (loaded first). No network, no library. */
(function () {
  "use strict";
  var HW = window.HW;
  var DATA = window.HEADWATER || { nodes: [] };
  var ROOT = document.body.getAttribute("data-root") || "";

  /* ---- relative times ------------------------------------------------------------------- */
  function ago(iso) {
    var t = Date.parse(iso);
    if (isNaN(t)) return null;
    var s = Math.round((Date.now() - t) / 1000);
    if (s < 0) s = 0;
    if (s < 90) return s + " s ago";
    if (s < 5400) return Math.round(s / 60) + " min ago";
    if (s < 129600) return Math.round(s / 3600) + " h ago";
    return Math.round(s / 86400) + " days ago";
  }
  HW.each(document.querySelectorAll("time[datetime]"), function (el) {
    var rel = ago(el.getAttribute("datetime"));
    if (rel) el.textContent = rel;
  });

  /* ---- search over nodes and columns ------------------------------------------------------ */
  var input = document.getElementById("search");
  var list = document.getElementById("results");
  var entries = [];
  DATA.nodes.forEach(function (n) {
    entries.push({ key: n.n.toLowerCase(), label: n.n, what: n.k, desc: n.d, href: n.u,
                   extra: (n.d + " " + (n.t || []).join(" ")).toLowerCase() });
    n.c.forEach(function (c) {
      entries.push({ key: c[0].toLowerCase(), label: n.n + "." + c[0], what: "column " + c[1],
                     desc: c[2], href: n.u + "#" + c[3], extra: (n.n + " " + c[2]).toLowerCase() });
    });
  });
  function score(e, q) {
    if (e.key === q || e.label.toLowerCase() === q) return 0;
    if (e.key.indexOf(q) === 0) return 1;
    if (e.label.toLowerCase().indexOf(q) >= 0) return 2;
    if (e.extra.indexOf(q) >= 0) return 3;
    return -1;
  }
  var active = -1;
  function render(q) {
    HW.clear(list);
    active = -1;
    if (!q) { list.hidden = true; return; }
    var hits = [];
    for (var i = 0; i < entries.length; i++) {
      var s = score(entries[i], q);
      if (s >= 0) hits.push([s, entries[i].label.length, entries[i]]);
    }
    hits.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
    hits.slice(0, 40).forEach(function (h) {
      var e = h[2];
      list.appendChild(HW.el("li", {}, [HW.el("a", { href: ROOT + e.href }, [
        HW.el("span", { cls: "what", text: e.what }), e.label,
        e.desc ? HW.el("span", { cls: "desc", text: e.desc }) : null])]));
    });
    if (!hits.length) list.appendChild(HW.el("li", { cls: "none", text: "nothing matches" }));
    list.hidden = false;
  }
  if (input && list) {
    input.addEventListener("input", function () { render(input.value.trim().toLowerCase()); });
    input.addEventListener("keydown", function (ev) {
      var items = list.querySelectorAll("li a");
      if (ev.key === "ArrowDown" || ev.key === "ArrowUp") {
        ev.preventDefault();
        if (!items.length) return;
        if (active >= 0) items[active].parentNode.classList.remove("active");
        active = (active + (ev.key === "ArrowDown" ? 1 : items.length - 1)) % items.length;
        items[active].parentNode.classList.add("active");
        items[active].scrollIntoView({ block: "nearest" });
      } else if (ev.key === "Enter" && items.length) {
        window.location.href = items[Math.max(active, 0)].href;
      } else if (ev.key === "Escape") {
        input.value = ""; render("");
      }
    });
    document.addEventListener("keydown", function (ev) {
      if (ev.key === "/" && document.activeElement !== input) { ev.preventDefault(); input.focus(); }
    });
    document.addEventListener("click", function (ev) {
      if (!list.contains(ev.target) && ev.target !== input) list.hidden = true;
    });
  }

  /* ---- the DAG: pan, zoom, colour, neighbours --------------------------------------------- */
  var svg = document.getElementById("dag");
  var box = document.getElementById("dag-box");
  if (svg && box) {
    var vb = HW.viewBox(svg, box);
    vb.full = [-10, -10, +svg.getAttribute("data-width"), +svg.getAttribute("data-height")];
    var fit = vb.fit;
    var zoom = function (factor, cx, cy) { vb.zoom(factor, cx, cy, 50, vb.full[2] * 20); };
    fit();
    window.addEventListener("resize", fit);
    box.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      zoom(ev.deltaY > 0 ? 1.15 : 1 / 1.15, ev.clientX, ev.clientY);
    }, { passive: false });
    var drag = null, moved = false;
    box.addEventListener("pointerdown", function (ev) {
      if (ev.button !== 0) return;
      drag = { x: ev.clientX, y: ev.clientY, v: vb.view.slice() };
      moved = false;
    });
    window.addEventListener("pointermove", function (ev) {
      if (!drag) return;
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (!moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      moved = true;
      box.classList.add("dragging");
      vb.pan(drag.v, dx, dy);
    });
    window.addEventListener("pointerup", function () { drag = null; box.classList.remove("dragging"); });
    svg.addEventListener("click", function (ev) { if (moved) { ev.preventDefault(); moved = false; } }, true);
    box.addEventListener("dblclick", fit);
    var zin = document.getElementById("zoom-in"), zout = document.getElementById("zoom-out");
    if (zin) zin.addEventListener("click", function () { zoom(1 / 1.4); });
    if (zout) zout.addEventListener("click", function () { zoom(1.4); });
    var fitBtn = document.getElementById("fit");
    if (fitBtn) fitBtn.addEventListener("click", fit);
    HW.each(document.querySelectorAll("input[name=colour]"), function (r) {
      r.addEventListener("change", function () {
        var byStatus = r.value === "status" && r.checked;
        svg.classList.toggle("by-status", byStatus);
        svg.classList.toggle("by-kind", !byStatus);
        document.body.classList.toggle("colour-status", byStatus);
      });
    });
    var edges = svg.querySelectorAll(".edge");
    HW.each(svg.querySelectorAll(".node"), function (node) {
      var name = node.getAttribute("data-node");
      node.addEventListener("mouseenter", function () {
        svg.classList.add("focus");
        node.classList.add("hl");
        HW.each(edges, function (e) {
          var f = e.getAttribute("data-from"), t = e.getAttribute("data-to");
          if (f === name || t === name) {
            e.classList.add("hl");
            var other = svg.querySelector('.node[data-node="' + CSS.escape(f === name ? t : f) + '"]');
            if (other) other.classList.add("hl");
          }
        });
      });
      node.addEventListener("mouseleave", function () {
        svg.classList.remove("focus");
        HW.each(svg.querySelectorAll(".hl"), function (x) { x.classList.remove("hl"); });
      });
    });
  }

  /* ---- column lineage: hover a column to follow it, click one of this node's to pin ------ */
  var lin = document.getElementById("lineage");
  if (lin) {
    var heading = document.getElementById("node");
    HW.lineage(lin, heading ? heading.getAttribute("data-node") : null, { pinAny: false });
  }
})();
