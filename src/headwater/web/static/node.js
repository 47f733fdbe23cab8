/* A node's page: description, code, columns and their lineage, checks, history, preview. */
(function () {
  "use strict";
  var page = document.getElementById("node-page");
  var me = page.getAttribute("data-node");
  var path = "/api/nodes/" + encodeURIComponent(me);
  var KIND = HW.KIND;
  var E = HW.el;

  function setStatus(status, reason) {
    var s = document.getElementById("status");
    s.className = "badge status-" + status;
    s.textContent = status;
    s.title = reason || "";
    document.getElementById("status-reason").textContent = reason || "";
  }

  function paragraphs(text, kind) {
    var box = HW.clear(document.getElementById("description"));
    if (!text.trim()) {
      var how = kind === "sql" ? "as the leading comment of the file" : kind === "python" ? "as its docstring" : 'with description = "..." in its TOML';
      box.appendChild(E("p", { cls: "muted", text: "No description. Write one " + how + "." }));
      return;
    }
    text.trim().split(/\n\s*\n/).forEach(function (p) { box.appendChild(E("p", { text: p })); });
  }

  function facts(d) {
    var items = [["file", d.path]];
    if (d.materialized) items.push(["materialized", d.materialized]);
    if (d.owner) items.push(["owner", d.owner]);
    if (d.tags.length) items.push(["tags", d.tags.join(", ")]);
    if (d.table) {
      items.push(["rows", HW.rows(d.table.rows)]);
      items.push(["built", HW.time(d.table.built_at)]);
      items.push(["published", HW.time(d.table.published_at)]);
    }
    var dl = E("dl");
    items.forEach(function (kv) { dl.appendChild(E("dt", { text: kv[0] })); dl.appendChild(E("dd", { text: kv[1] })); });
    HW.clear(document.getElementById("facts")).appendChild(dl);
  }

  function links(id, names) {
    var ul = HW.clear(document.getElementById(id));
    if (!names.length) ul.appendChild(E("li", { cls: "muted", text: "none" }));
    names.forEach(function (n) { ul.appendChild(E("li", {}, [E("a", { href: HW.nodeHref(n), text: n })])); });
  }

  function table(headers, rows) {
    var t = E("table", { cls: "grid" }, [E("thead", {}, [E("tr", {}, headers.map(function (h) {
      return E("th", { text: h[0], cls: h[1] || null });
    }))])]);
    var body = E("tbody");
    rows.forEach(function (r) { body.appendChild(r); });
    t.appendChild(body);
    return t;
  }

  function columns(d) {
    var box = HW.clear(document.getElementById("columns"));
    if (!d.columns.length) {
      box.appendChild(E("p", { cls: "muted", text: d.lineage_notes.join("; ") || "The columns are known once the node is built." }));
      return;
    }
    var rows = d.columns.map(function (c) {
      var made = E("td");
      c.inputs.forEach(function (i, k) {
        if (k) made.appendChild(document.createTextNode(", "));
        made.appendChild(E("a", { href: HW.nodeHref(i.node), text: i.node + "." + i.column }));
        made.appendChild(E("span", { cls: "tr", text: " " + i.transform + (i.exact ? "" : " ~coarse") }));
      });
      return E("tr", { "data-col": c.name, id: "col-" + c.name.replace(/[^A-Za-z0-9_-]/g, "_") }, [
        E("td", {}, [E("b", { text: c.name })]),
        E("td", {}, [E("code", { text: c.type || "" })]),
        E("td", { text: c.description || "" }),
        made
      ]);
    });
    var t = table([["column"], ["type"], ["description"], ["made of"]], rows);
    t.classList.add("columns");
    box.appendChild(t);
  }

  function checks(d) {
    var box = HW.clear(document.getElementById("checks"));
    if (!d.checks.length) {
      box.appendChild(E("p", { cls: "muted", text: "No checks declared. Add one to the leading comment, e.g. -- @check: not_null(id)." }));
      return;
    }
    box.appendChild(table([["check"], ["severity"], ["last result"], ["failing rows", "num"], ["at"], [""]],
      d.checks.map(function (c) {
        return E("tr", {}, [E("td", {}, [E("code", { text: c.name })]), E("td", { text: c.severity }),
          E("td", {}, [HW.badge(c.status, "check-" + String(c.status).replace(/ /g, "-"))]),
          E("td", { cls: "num", text: HW.rows(c.failing_rows) }), E("td", { text: HW.time(c.at) }),
          E("td", { cls: c.error ? "err" : "", text: c.error || "" })]);
      })));
  }

  function history(d) {
    var box = HW.clear(document.getElementById("history"));
    if (!d.history.length) { box.appendChild(E("p", { cls: "muted", text: "Never run." })); return; }
    box.appendChild(table([["run"], ["status"], ["why"], ["rows", "num"], ["duration", "num"], ["ended"], ["error"]],
      d.history.map(function (h) {
        return E("tr", {}, [E("td", {}, [E("a", { href: "/runs/" + encodeURIComponent(h.run_id), text: h.run_id })]),
          E("td", {}, [HW.badge(h.status, "status-" + h.status)]), E("td", { cls: "muted", text: h.reason || "" }),
          E("td", { cls: "num", text: HW.rows(h.rows) }),
          E("td", { cls: "num", text: h.status === "skipped" ? "—" : HW.seconds(h.seconds) }),
          E("td", { text: HW.time(h.ended_at) }), E("td", { cls: h.error ? "err" : "", text: (h.error || "").split("\n")[0] })]);
      })));
  }

  function code(d) {
    var cfg = document.getElementById("config-section");
    cfg.hidden = !d.config.length;
    if (d.config.length) {
      HW.clear(document.getElementById("config")).appendChild(table([["setting"], ["value"]], d.config.map(function (c) {
        return E("tr", {}, [E("th", { text: c.key }), E("td", {}, [E("code", { text: c.value })])]);
      })));
    }
    var sec = document.getElementById("code-section");
    sec.hidden = !d.code.text;
    document.getElementById("code-path").textContent = d.path;
    /* Pygments output: escaped by the server, spans only */
    document.getElementById("code").innerHTML = d.code.html;
  }

  function lineage(d) {
    var sec = document.getElementById("lineage-section");
    sec.hidden = !d.lineage_svg;
    var box = document.getElementById("lineage-box");
    /* drawn by headwater.docs (every text escaped), links rewritten to this server's pages */
    box.innerHTML = d.lineage_svg;
    HW.each(box.querySelectorAll("a[href]"), function (a) {
      var href = a.getAttribute("href");
      if (href === "#") return;
      if (href.charAt(0) !== "/" && href.indexOf(":") < 0) a.setAttribute("href", "/nodes/" + href);
    });
    var lin = box.querySelector("svg");
    if (!lin) return;
    HW.lineage(lin, me, { pinAny: true, scroll: true });
  }

  function render(d) {
    document.getElementById("kind").className = "badge kind-" + d.kind;
    document.getElementById("kind").textContent = KIND[d.kind];
    document.getElementById("kind-label").textContent = KIND[d.kind];
    if (!liveState) setStatus(d.status, d.reason);
    paragraphs(d.description, d.kind);
    facts(d);
    links("upstream", d.upstream);
    links("downstream", d.downstream);
    columns(d);
    lineage(d);  /* after the columns table: following a column lights its row */
    checks(d);
    history(d);
    code(d);
    if (d.kind === "sink") {
      document.getElementById("preview").textContent = "";
      document.getElementById("preview").appendChild(E("p", { cls: "notice", text: "A sink writes data out; it has no table to preview." }));
    }
    kind = d.kind;
    built = !!(d.table && d.table.physical);
  }

  var kind = null, built = false;
  function preview() {
    var box = HW.clear(document.getElementById("preview"));
    if (kind === "sink") return;
    if (!built) {
      box.appendChild(E("p", { cls: "notice", text: me + " has not been built yet: run it with its upstream to see its rows." }));
      return;
    }
    box.appendChild(E("p", { cls: "notice", text: "loading…" }));
    HW.api(path + "/preview?limit=100").then(function (p) {
      HW.clear(box);
      var rows = p.rows.map(function (r) {
        return E("tr", {}, r.map(function (v) {
          return v === null ? E("td", { cls: "null", text: "null" }) :
            E("td", { cls: typeof v === "number" ? "num" : null, text: typeof v === "object" ? JSON.stringify(v) : String(v) });
        }));
      });
      box.appendChild(table(p.columns.map(function (c) { return [c.name + " (" + c.type + ")"]; }), rows));
      box.appendChild(E("p", { cls: "muted small", text: p.rows.length + " rows shown" + (p.truncated ? " (the first " + p.limit + ")" : "") }));
    }).catch(function (err) {
      HW.clear(box).appendChild(E("p", { cls: "notice" + (err.status === 409 ? " busy" : ""), text: HW.message(err) }));
    });
  }

  function load() {
    return HW.api(path).then(render).catch(function (err) {
      HW.clear(document.getElementById("description")).appendChild(E("pre", { cls: "error", text: HW.message(err) }));
    });
  }

  /* ---- live: this node's state in the current run ------------------------------------ */
  var liveState = null;
  var LABEL = { queued: "queued", running: "running", done: "done", skipped: "skipped", failed: "failed" };
  function live(state, reason) {
    liveState = state;
    setStatus(LABEL[state] || state, reason);
  }
  HW.on("hello", function (d) {
    var run = d.run;
    if (!run || run.status !== "running") return;
    run.nodes.forEach(function (n) { if (n.name === me && n.state === "running") live("running", "being built now"); });
  });
  HW.on("run_started", function (d) {
    d.nodes.forEach(function (n) { if (n.name === me && n.state === "queued") live("queued", n.reason); });
  });
  HW.on("node_started", function (d) { if (d.name === me) live("running", "being built now"); });
  HW.on("node_finished", function (d) {
    if (d.name !== me) return;
    var why = d.state === "failed" ? (d.error || "failed").split("\n")[0] :
      d.state === "done" ? "built " + HW.rows(d.rows) + " rows in " + HW.seconds(d.seconds) : d.reason;
    live(d.state, why);
  });
  HW.on("run_finished", function () { load().then(preview); });
  HW.on("run_error", function () { liveState = null; load(); });
  document.getElementById("reload-preview").addEventListener("click", preview);

  load().then(preview);
})();
