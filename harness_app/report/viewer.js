// The report's sample viewer: one page of items at a time from the JSON blob in #sample-data.
// State lives in the URL hash (#task=math500&filter=flips&a=base&b=cgd&page=1&cols=ab&math=1), so a
// link or a headless browser reproduces a view. Model text is only ever set as textContent, never as
// HTML: responses are untrusted. On math benchmarks KaTeX (embedded by the page, see katex.py)
// then typesets that text in place: $...$, \(...\) and \[...\] in prompts and responses, the whole
// of gold and extracted answers; math=0 shows the source. KaTeX builds its own nodes from the text
// and runs no markup from it (trust is off: no \href, no \includegraphics).
(function () {
  "use strict";
  var PAGE = 25;
  var FILTERS = {
    all: "all items",
    flips: "flipped between A and B",
    critique: "critique-style answer (A or B)",
    noanswer: "no answer (A or B)",
  };
  var root = document.getElementById("viewer");
  var blob = document.getElementById("sample-data");
  if (!root || !blob) return;
  var data = JSON.parse(blob.textContent);
  var models = data.models;
  var byTask = {};
  data.tasks.forEach(function (t) { byTask[t.task] = t; });
  var state = {
    task: data.tasks.length ? data.tasks[0].task : "",
    filter: "all",
    a: models[0] || "",
    b: models[models.length - 1] || "",
    page: 1,
    cols: "all",
    math: "1",
  };
  var DELIMITERS = [
    { left: "$$", right: "$$", display: true },
    { left: "\\[", right: "\\]", display: true },
    { left: "\\(", right: "\\)", display: false },
    { left: "$", right: "$", display: false },
  ];

  function mathOn(task) {
    return !!(task && task.math && state.math === "1" && window.katex && window.renderMathInElement);
  }

  // Typesets the $...$ spans of a text node's parent; text that does not parse stays as it was.
  function typesetText(node) {
    window.renderMathInElement(node, { delimiters: DELIMITERS, throwOnError: false, ignoredTags: [] });
    return node;
  }

  // A gold or extracted answer is one expression without delimiters.
  function typesetWhole(node, source) {
    try {
      window.katex.render(source, node, { throwOnError: true, displayMode: false });
      node.setAttribute("title", source);
    } catch (e) {
      node.textContent = source;
    }
    return node;
  }

  function el(tag, cls, text) {
    var node = document.createElement(tag);
    if (cls) node.className = cls;
    if (text !== undefined && text !== null) node.textContent = text;
    return node;
  }

  function passes(v) { return v === undefined || v === null ? null : v >= 0.5; }

  function matches(item, filter) {
    var a = item.m[state.a] || {}, b = item.m[state.b] || {};
    if (filter === "flips") {
      var pa = passes(a.v), pb = passes(b.v);
      return pa !== null && pb !== null && pa !== pb;
    }
    if (filter === "critique") return !!(a.c || b.c);
    if (filter === "noanswer") return !!(a.n || b.n);
    return true;
  }

  function readHash() {
    var hash = window.location.hash.replace(/^#/, "");
    if (hash.indexOf("=") < 0) return false; // a plain anchor (#findings), not a viewer state
    hash.split("&").forEach(function (pair) {
      var i = pair.indexOf("=");
      if (i < 0) return;
      var key = decodeURIComponent(pair.slice(0, i)), value = decodeURIComponent(pair.slice(i + 1));
      if (key === "page") state.page = Math.max(1, parseInt(value, 10) || 1);
      else if (key in state) state[key] = value;
    });
    if (!(state.task in byTask) && data.tasks.length) state.task = data.tasks[0].task;
    if (!(state.filter in FILTERS)) state.filter = "all";
    if (state.math !== "0") state.math = "1";
    if (models.indexOf(state.a) < 0) state.a = models[0];
    if (models.indexOf(state.b) < 0) state.b = models[models.length - 1];
    return true;
  }

  function writeHash() {
    var hash = ["task", "filter", "a", "b", "page", "cols", "math"].map(function (k) {
      return k + "=" + encodeURIComponent(state[k]);
    }).join("&");
    try { history.replaceState(null, "", "#" + hash); } catch (e) { /* file: URLs in some browsers */ }
  }

  function select(id, label, options, value, onChange) {
    var wrap = el("label", "control", label + " ");
    var node = el("select");
    node.id = id;
    options.forEach(function (o) {
      var opt = el("option", null, o[1]);
      opt.value = o[0];
      node.appendChild(opt);
    });
    node.value = value;
    node.addEventListener("change", function () { onChange(node.value); });
    wrap.appendChild(node);
    return wrap;
  }

  function verdictBadge(entry) {
    if (entry.v === undefined) return el("span", "badge none", "no verdict");
    var binary = entry.v === 0 || entry.v === 1;
    var text = binary ? (entry.v === 1 ? "\u2713 correct" : "\u2717 wrong") : "score " + entry.v.toFixed(3);
    return el("span", "badge " + (passes(entry.v) ? "ok" : "bad"), text);
  }

  function modelCell(label, entry, task) {
    var cell = el("section", "model" + (label === state.a ? " sel-a" : "") + (label === state.b ? " sel-b" : ""));
    var head = el("h4", null, label + (label === state.a ? " (A)" : "") + (label === state.b ? " (B)" : "") + " ");
    cell.appendChild(head);
    if (!entry) {
      cell.appendChild(el("p", "muted", "not evaluated on this item"));
      return cell;
    }
    head.appendChild(verdictBadge(entry));
    if (entry.c) head.appendChild(el("span", "badge flag", "critique-style"));
    if (entry.n) head.appendChild(el("span", "badge flag", "no answer"));
    var answer = el("div", "answer", "answer: ");
    if (entry.x !== undefined && mathOn(task)) answer.appendChild(typesetWhole(el("span", "math"), entry.x));
    else answer.appendChild(el("code", null, entry.x === undefined ? "(none extracted)" : entry.x));
    cell.appendChild(answer);
    if (entry.r !== undefined) {
      var response = el("pre", "response", entry.r);
      cell.appendChild(mathOn(task) ? typesetText(response) : response);
    }
    else if (task.redacted) cell.appendChild(el("p", "muted", "response not kept (redacted benchmark)"));
    return cell;
  }

  function render() {
    var task = byTask[state.task];
    var list = document.getElementById("viewer-items");
    var count = document.getElementById("viewer-count");
    list.textContent = "";
    if (!task) { count.textContent = "No per-item records in this run."; return; }
    var hits = task.items.filter(function (item) { return matches(item, state.filter); });
    var pages = Math.max(1, Math.ceil(hits.length / PAGE));
    state.page = Math.min(state.page, pages);
    var shown = hits.slice((state.page - 1) * PAGE, state.page * PAGE);
    count.textContent = hits.length + " of " + task.items.length + " items (" + FILTERS[state.filter] +
      ") \u00b7 page " + state.page + " of " + pages;
    count.setAttribute("data-matches", String(hits.length));
    document.getElementById("viewer-prev").disabled = state.page <= 1;
    document.getElementById("viewer-next").disabled = state.page >= pages;
    var cols = state.cols === "ab" ? models.filter(function (m) { return m === state.a || m === state.b; }) : models;
    shown.forEach(function (item) {
      var article = el("article", "item");
      article.setAttribute("data-id", item.id);
      var head = el("header");
      head.appendChild(el("b", null, item.id));
      if (item.g !== undefined) {
        head.appendChild(document.createTextNode(" \u00b7 gold: "));
        head.appendChild(mathOn(task) ? typesetWhole(el("span", "math gold"), item.g) : el("code", null, item.g));
      }
      article.appendChild(head);
      if (item.p !== undefined) {
        var prompt = el("details", "prompt");
        prompt.appendChild(el("summary", null, "prompt"));
        var source = el("pre", null, item.p);
        prompt.appendChild(mathOn(task) ? typesetText(source) : source);
        article.appendChild(prompt);
      } else if (task.redacted) {
        article.appendChild(el("p", "muted", "Question and options not kept (redacted benchmark): ids and letters only."));
      }
      var grid = el("div", "models");
      grid.style.gridTemplateColumns = "repeat(" + cols.length + ", minmax(17rem, 1fr))";
      cols.forEach(function (label) { grid.appendChild(modelCell(label, item.m[label], task)); });
      article.appendChild(grid);
      list.appendChild(article);
    });
  }

  function change(key) {
    return function (value) {
      state[key] = value;
      if (key !== "page") state.page = 1;
      render();
      writeHash();
    };
  }

  function build() {
    var bar = el("div", "viewer-controls");
    var modelOptions = models.map(function (m) { return [m, m]; });
    bar.appendChild(select("viewer-task", "benchmark", data.tasks.map(function (t) {
      return [t.task, t.task + " (" + t.items.length + ")"];
    }), state.task, change("task")));
    bar.appendChild(select("viewer-filter", "show", Object.keys(FILTERS).map(function (k) {
      return [k, FILTERS[k]];
    }), state.filter, change("filter")));
    bar.appendChild(select("viewer-a", "model A", modelOptions, state.a, change("a")));
    bar.appendChild(select("viewer-b", "model B", modelOptions, state.b, change("b")));
    bar.appendChild(select("viewer-cols", "columns", [["all", "every model"], ["ab", "A and B only"]],
      state.cols, change("cols")));
    if (window.katex) {
      bar.appendChild(select("viewer-math", "mathematics", [["1", "rendered"], ["0", "LaTeX source"]],
        state.math, change("math")));
    }
    var prev = el("button", null, "\u2190 previous");
    prev.id = "viewer-prev";
    prev.addEventListener("click", function () { change("page")(state.page - 1); });
    var next = el("button", null, "next \u2192");
    next.id = "viewer-next";
    next.addEventListener("click", function () { change("page")(state.page + 1); });
    bar.appendChild(prev);
    bar.appendChild(next);
    root.appendChild(bar);
    var count = el("p", "viewer-count");
    count.id = "viewer-count";
    root.appendChild(count);
    var list = el("div");
    list.id = "viewer-items";
    root.appendChild(list);
  }

  function syncControls() {
    ["task", "filter", "a", "b", "cols", "math"].forEach(function (k) {
      var control = document.getElementById("viewer-" + k);
      if (control) control.value = state[k];
    });
  }

  var fromHash = readHash();
  build();
  render();
  root.setAttribute("data-rendered-ms", String(Math.round(performance.now())));
  if (fromHash) root.scrollIntoView();
  window.addEventListener("hashchange", function () {
    if (readHash()) { syncControls(); render(); }
  });
})();
