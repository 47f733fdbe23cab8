/* What the docs site and the web UI (headwater serve) share, on window.HW: building DOM and
   SVG elements, the view box of the DAG drawing (fit, zoom, pan) and following a column
   through the lineage drawing. Each side loads it before its own scripts (docs: app.js,
   web: common.js). No network, no library. */
(function () {
  "use strict";
  var HW = (window.HW = window.HW || {});

  HW.each = function (list, fn) { Array.prototype.forEach.call(list, fn); };
  /* An element; attrs "text" sets its text, "cls" its class; children are elements or strings. */
  HW.el = function (tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (k === "cls") { if (attrs[k]) e.className = attrs[k]; }
      else if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) {
      if (c === null || c === undefined) return;
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  };
  HW.svg = function (tag, attrs, children) {
    var e = document.createElementNS("http://www.w3.org/2000/svg", tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k];
      else if (attrs[k] !== null && attrs[k] !== undefined) e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  };
  HW.clear = function (e) { while (e.firstChild) e.removeChild(e.firstChild); return e; };

  /* The view box of the drawing in `svg`, which fills `box`: `full` is the whole drawing
     ([x, y, w, h]), `view` what is shown. Zoom and pan measure the svg on screen. */
  HW.viewBox = function (svg, box) {
    var vb = { full: null, view: null };
    vb.set = function (v) { vb.view = v; svg.setAttribute("viewBox", v.join(" ")); };
    /* the whole drawing, centred, at the box's aspect ratio */
    vb.fit = function () {
      var f = vb.full;
      if (!f) return;
      var r = box.getBoundingClientRect();
      var scale = Math.max(f[2] / Math.max(r.width, 1), f[3] / Math.max(r.height, 1));
      var w = r.width * scale, h = r.height * scale;
      vb.set([f[0] - (w - f[2]) / 2, f[1] - (h - f[3]) / 2, w, h]);
    };
    /* widths times `factor`, the point under (cx, cy) staying put (the centre without
       them); `min` and `max` bound the new width */
    vb.zoom = function (factor, cx, cy, min, max) {
      var v = vb.view;
      if (!v) return;
      var r = svg.getBoundingClientRect();
      var px = cx === undefined ? 0.5 : (cx - r.left) / r.width;
      var py = cy === undefined ? 0.5 : (cy - r.top) / r.height;
      var w = v[2] * factor;
      if (min !== undefined) w = Math.min(Math.max(w, min), max);
      var h = w * (v[3] / v[2]);
      vb.set([v[0] + (v[2] - w) * px, v[1] + (v[3] - h) * py, w, h]);
    };
    /* `from` (a view) moved by dx, dy screen pixels */
    vb.pan = function (from, dx, dy) {
      var r = svg.getBoundingClientRect();
      vb.set([from[0] - dx / r.width * from[2], from[1] - dy / r.height * from[3], from[2], from[3]]);
    };
    return vb;
  };

  /* Column lineage drawn by headwater.docs in `lin`, on the page of node `me`: hovering a
     column lights it, its edges, the columns at their other ends and its row of the
     columns table; a click pins it, as does a click on a row or a #col-... in the URL.
     opts.pinAny: every column pins (else only the node's own, data-side="me");
     opts.scroll: scroll to the row the URL names. */
  HW.lineage = function (lin, me, opts) {
    var each = HW.each;
    var follow = function (ref) {
      each(lin.querySelectorAll(".hl"), function (x) { x.classList.remove("hl"); });
      each(document.querySelectorAll("table.columns tr.hl"), function (x) { x.classList.remove("hl"); });
      lin.classList.toggle("focus", !!ref);
      if (!ref) return;
      var refs = {};
      refs[ref] = true;
      each(lin.querySelectorAll(".ledge"), function (e) {
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
      if (opts.pinAny || c.getAttribute("data-side") === "me") {
        c.addEventListener("click", function () { pinned = pinned === ref ? null : ref; follow(pinned); });
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
      if (target) {
        pinned = me + "." + target.getAttribute("data-col");
        follow(pinned);
        if (opts.scroll) target.scrollIntoView();
      }
    }
  };
})();
