/* Headwater docs: search, DAG pan/zoom, column lineage highlighting. No network, no library. */
(function () {
  "use strict";
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
  Array.prototype.forEach.call(document.querySelectorAll("time[datetime]"), function (el) {
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
    list.innerHTML = "";
    active = -1;
    if (!q) { list.hidden = true; return; }
    var hits = [];
    for (var i = 0; i < entries.length; i++) {
      var s = score(entries[i], q);
      if (s >= 0) hits.push([s, entries[i].label.length, entries[i]]);
    }
    hits.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
    hits.slice(0, 40).forEach(function (h) {
      var e = h[2], li = document.createElement("li"), a = document.createElement("a");
      a.href = ROOT + e.href;
      var what = document.createElement("span");
      what.className = "what"; what.textContent = e.what;
      a.appendChild(what);
      a.appendChild(document.createTextNode(e.label));
      if (e.desc) {
        var d = document.createElement("span");
        d.className = "desc"; d.textContent = e.desc;
        a.appendChild(d);
      }
      li.appendChild(a);
      list.appendChild(li);
    });
    if (!hits.length) {
      var none = document.createElement("li");
      none.className = "none"; none.textContent = "nothing matches";
      list.appendChild(none);
    }
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
    var full = { x: -10, y: -10, w: +svg.getAttribute("data-width"), h: +svg.getAttribute("data-height") };
    var view = { x: full.x, y: full.y, w: full.w, h: full.h };
    function apply() { svg.setAttribute("viewBox", view.x + " " + view.y + " " + view.w + " " + view.h); }
    function fit() {
      var r = box.getBoundingClientRect();
      var aspect = r.width / Math.max(1, r.height);
      view.w = Math.max(full.w, full.h * aspect);
      view.h = view.w / aspect;
      view.x = full.x - (view.w - full.w) / 2;
      view.y = full.y - (view.h - full.h) / 2;
      apply();
    }
    function zoom(factor, cx, cy) {
      var r = box.getBoundingClientRect();
      var px = cx === undefined ? 0.5 : (cx - r.left) / r.width;
      var py = cy === undefined ? 0.5 : (cy - r.top) / r.height;
      var nw = Math.min(Math.max(view.w * factor, 50), full.w * 20);
      var nh = nw * (view.h / view.w);
      view.x += (view.w - nw) * px; view.y += (view.h - nh) * py;
      view.w = nw; view.h = nh;
      apply();
    }
    fit();
    window.addEventListener("resize", fit);
    box.addEventListener("wheel", function (ev) {
      ev.preventDefault();
      zoom(ev.deltaY > 0 ? 1.15 : 1 / 1.15, ev.clientX, ev.clientY);
    }, { passive: false });
    var drag = null, moved = false;
    box.addEventListener("pointerdown", function (ev) {
      if (ev.button !== 0) return;
      drag = { x: ev.clientX, y: ev.clientY, vx: view.x, vy: view.y };
      moved = false;
    });
    window.addEventListener("pointermove", function (ev) {
      if (!drag) return;
      var dx = ev.clientX - drag.x, dy = ev.clientY - drag.y;
      if (!moved && Math.abs(dx) + Math.abs(dy) < 4) return;
      moved = true;
      box.classList.add("dragging");
      var r = box.getBoundingClientRect();
      view.x = drag.vx - dx * view.w / r.width;
      view.y = drag.vy - dy * view.h / r.height;
      apply();
    });
    window.addEventListener("pointerup", function () { drag = null; box.classList.remove("dragging"); });
    svg.addEventListener("click", function (ev) { if (moved) { ev.preventDefault(); moved = false; } }, true);
    box.addEventListener("dblclick", fit);
    var zin = document.getElementById("zoom-in"), zout = document.getElementById("zoom-out");
    if (zin) zin.addEventListener("click", function () { zoom(1 / 1.4); });
    if (zout) zout.addEventListener("click", function () { zoom(1.4); });
    var fitBtn = document.getElementById("fit");
    if (fitBtn) fitBtn.addEventListener("click", fit);
    Array.prototype.forEach.call(document.querySelectorAll("input[name=colour]"), function (r) {
      r.addEventListener("change", function () {
        var byStatus = r.value === "status" && r.checked;
        svg.classList.toggle("by-status", byStatus);
        svg.classList.toggle("by-kind", !byStatus);
        document.body.classList.toggle("colour-status", byStatus);
      });
    });
    var edges = svg.querySelectorAll(".edge");
    Array.prototype.forEach.call(svg.querySelectorAll(".node"), function (node) {
      var name = node.getAttribute("data-node");
      node.addEventListener("mouseenter", function () {
        svg.classList.add("focus");
        node.classList.add("hl");
        Array.prototype.forEach.call(edges, function (e) {
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
        Array.prototype.forEach.call(svg.querySelectorAll(".hl"), function (x) { x.classList.remove("hl"); });
      });
    });
  }

  /* ---- column lineage: hover a column to follow it, click to pin ------------------------- */
  var lin = document.getElementById("lineage");
  if (lin) {
    var ledges = lin.querySelectorAll(".ledge");
    var heading = document.getElementById("node");
    var me = heading ? heading.getAttribute("data-node") : null;
    var each = function (list, fn) { Array.prototype.forEach.call(list, fn); };
    var follow = function (ref) {
      each(lin.querySelectorAll(".hl"), function (x) { x.classList.remove("hl"); });
      each(document.querySelectorAll("table.columns tr.hl"), function (x) { x.classList.remove("hl"); });
      lin.classList.toggle("focus", !!ref);
      if (!ref) return;
      var refs = {};
      refs[ref] = true;
      each(ledges, function (e) {
        var f = e.getAttribute("data-from"), t = e.getAttribute("data-to");
        if (f === ref || t === ref) { e.classList.add("hl"); refs[f] = true; refs[t] = true; }
      });
      each(lin.querySelectorAll(".lcol"), function (c) {
        if (refs[c.getAttribute("data-ref")]) c.classList.add("hl");
      });
      if (me && ref.indexOf(me + ".") === 0) {
        var row = document.querySelector('table.columns tr[data-col="' + CSS.escape(ref.slice(me.length + 1)) + '"]');
        if (row) row.classList.add("hl");
      }
    };
    var pinned = null;
    each(lin.querySelectorAll(".lcol"), function (c) {
      var ref = c.getAttribute("data-ref");
      c.addEventListener("mouseenter", function () { if (!pinned) follow(ref); });
      c.addEventListener("mouseleave", function () { if (!pinned) follow(null); });
      if (c.getAttribute("data-side") === "me") {
        c.addEventListener("click", function () {
          pinned = pinned === ref ? null : ref;
          follow(pinned);
        });
      }
    });
    each(document.querySelectorAll("table.columns tr[data-col]"), function (row) {
      row.addEventListener("click", function (ev) {
        if (ev.target.closest("a")) return;
        pinned = me + "." + row.getAttribute("data-col");
        follow(pinned);
      });
    });
    if (me && window.location.hash.indexOf("#col-") === 0) {
      var target = document.getElementById(window.location.hash.slice(1));
      if (target) { pinned = me + "." + target.getAttribute("data-col"); follow(pinned); }
    }
  }
})();
