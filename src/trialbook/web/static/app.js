/* trialbook UI: plain JavaScript, no build step. Every page is filled from the JSON API
   (/api/..., documented at /api/openapi.json); window.TB holds the page name and its
   path parameters. Charts use the bundled uPlot. */
"use strict";

const TB = window.TB || {};
const POLL_MS = 2000;
const COLORS = ["#2f6fde", "#d9480f", "#2b8a3e", "#862e9c", "#c2255c", "#1098ad", "#e67700",
  "#5c940d", "#364fc7", "#a61e4d"];

// -- helpers -----------------------------------------------------------------------------------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else if (k === "class") node.className = v;
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

async function api(path, params) {
  const query = params ? "?" + new URLSearchParams(
    Object.entries(params).filter(([, v]) => v !== null && v !== undefined && v !== "")) : "";
  const response = await fetch("/api" + path + query, { credentials: "same-origin" });
  const body = await response.json().catch(() => ({ error: response.statusText }));
  outageBanner(response.status === 503 ? body : null);
  if (!response.ok) throw Object.assign(new Error(body.error || response.statusText), { body });
  return body;
}

// While the store's server is down the API answers 503: say so on top of the page, until a
// request succeeds again.
function outageBanner(body) {
  let banner = document.getElementById("outage");
  if (!body) { if (banner) banner.remove(); return; }
  if (!banner) {
    banner = el("div", { id: "outage", class: "banner", role: "alert" });
    document.body.prepend(banner);
  }
  banner.textContent = "The store is unreachable; retrying. " + (body.detail || "");
}

const enc = encodeURIComponent;
const expPath = (name) => "/experiments/" + enc(name);
const expPage = (name) => "/e/" + enc(name);

function fmt(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") {
    if (Number.isInteger(value)) return String(value);
    const abs = Math.abs(value);
    return abs !== 0 && (abs < 1e-3 || abs >= 1e6) ? value.toExponential(3) : String(+value.toPrecision(5));
  }
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function when(seconds) {
  if (!seconds) return "";
  return new Date(seconds * 1000).toISOString().replace("T", " ").slice(0, 19);
}

function ago(seconds) {
  if (!seconds) return "";
  const d = Date.now() / 1000 - seconds;
  if (d < 60) return Math.max(0, Math.round(d)) + " s ago";
  if (d < 3600) return Math.round(d / 60) + " min ago";
  if (d < 86400) return Math.round(d / 3600) + " h ago";
  return Math.round(d / 86400) + " days ago";
}

function duration(s) {
  if (s === null || s === undefined) return "";
  if (s < 60) return s.toFixed(s < 10 ? 2 : 1) + " s";
  return Math.floor(s / 60) + " min " + Math.round(s % 60) + " s";
}

// "42% epochs · 10%": the progress levels a running job reported (progress() in the task).
const progressText = (levels) => (levels || []).map((l) => Math.round(100 * l.progress) + "%" + (l.desc ? " " + l.desc : "")).join(" · ");
const badge = (status) => el("span", { class: "status status-" + status, "data-status": status }, status);
const main = () => document.getElementById("main");

function crumbs(...parts) {
  const nav = document.getElementById("crumbs");
  nav.replaceChildren();
  parts.forEach(([label, href], i) => {
    if (i) nav.append(el("span", {}, "/"));
    nav.append(href ? el("a", { href }, label) : el("b", {}, label));
  });
}

function setLive(on) {
  document.getElementById("live-dot").classList.toggle("on", on);
}

function every(ms, fn) {
  let timer = null;
  const tick = async () => {
    try { await fn(); } catch (e) { console.warn(e); }
    timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  return () => clearTimeout(timer);
}

function kvTable(rows) {
  return el("table", { class: "kv" }, rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
}

async function putJson(path, body) {
  const response = await fetch("/api" + path, { method: "PUT", credentials: "same-origin",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const answer = await response.json().catch(() => ({ error: response.statusText }));
  if (!response.ok) throw new Error(answer.error || response.statusText);
  return answer;
}

// -- notes and descriptions (markdown, a small subset) -------------------------------------------
// Built as DOM nodes from text nodes only (never innerHTML), so markup in a note shows as text:
// paragraphs (blank lines), line breaks, **bold**, *italic*, `code`, [links](https://...).

const INLINE = /(`[^`\n]+`)|(\*\*[^*\n]+\*\*)|(\*[^*\n]+\*)|\[([^\]\n]+)\]\((https?:\/\/[^\s)]+)\)/g;

function inlineNodes(line) {
  const out = [];
  let last = 0;
  for (const m of line.matchAll(INLINE)) {
    if (m.index > last) out.push(line.slice(last, m.index));
    if (m[1]) out.push(el("code", {}, m[1].slice(1, -1)));
    else if (m[2]) out.push(el("strong", {}, m[2].slice(2, -2)));
    else if (m[3]) out.push(el("em", {}, m[3].slice(1, -1)));
    else out.push(el("a", { href: m[5], rel: "noopener noreferrer nofollow", target: "_blank" }, m[4]));
    last = m.index + m[0].length;
  }
  if (last < line.length) out.push(line.slice(last));
  return out;
}

function markdown(text) {
  return text.replace(/\r\n?/g, "\n").split(/\n\s*\n/).filter((p) => p.trim()).map((para) =>
    el("p", {}, para.split("\n").map((line, i) => [i ? el("br") : null, inlineNodes(line)])));
}

// A note or description with its empty state and, when actions are allowed, an edit control:
// save(text) stores it and returns the text stored (null: removed).
function noteBlock({ id, text, empty, save }) {
  const box = el("div", { class: "card note", id });
  const show = (value) => {
    const body = value ? el("div", { class: "markdown" }, markdown(value))
      : el("p", { class: "muted empty" }, empty + (TB.actions ? " Or edit it here." : ""));
    box.replaceChildren(body, ...(TB.actions ? [el("button", { class: "ghost edit", onclick: () => edit(value) }, "edit")] : []));
  };
  const edit = (value) => {
    const area = el("textarea", { rows: 8, placeholder: "markdown: **bold**, *italic*, `code`, [link](https://...)" });
    area.value = value || "";
    const error = el("div", { class: "error" });
    const saveBtn = el("button", { class: "save", onclick: async () => {
      saveBtn.disabled = true;
      try { text = await save(area.value); show(text); }
      catch (e) { error.textContent = e.message; saveBtn.disabled = false; }
    } }, "Save");
    box.replaceChildren(area, el("div", { class: "toolbar" }, saveBtn,
      el("button", { class: "ghost cancel", onclick: () => show(text) }, "Cancel")), error);
    area.focus();
  };
  show(text);
  return box;
}

// -- charts ------------------------------------------------------------------------------------

function joinSeries(series) {
  // series: [{steps, values}], aligned on the union of steps (null where a run has no point)
  const xs = [...new Set(series.flatMap((s) => s.steps))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const ys = series.map((s) => {
    const column = new Array(xs.length).fill(null);
    s.steps.forEach((x, i) => { column[index.get(x)] = s.values[i]; });
    return column;
  });
  return [xs, ...ys];
}

function lineChart(target, title, labels, series, width) {
  const box = el("div", { class: "chart", "data-metric": title }, el("h3", {}, title));
  target.append(box);
  const data = joinSeries(series);
  const opts = {
    width: width || 460, height: 240,
    scales: { x: { time: false } },
    series: [{ label: "step" }, ...labels.map((label, i) => ({
      label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, points: { show: false },
    }))],
    axes: [{}, { size: 60 }],
  };
  return new uPlot(opts, data, box);
}

async function metricCharts(target, name, runIds, previous) {
  const data = await api(expPath(TB.name) + "/metrics/" + enc(name), { runs: runIds.join(","), points: 2000 });
  const present = runIds.filter((id) => data.runs[id]);
  const series = present.map((id) => data.runs[id]);
  if (previous) { previous.setData(joinSeries(series)); return previous; }
  const total = series.reduce((n, s) => n + s.total, 0);
  const chart = lineChart(target, name, present.map((id) => "run " + id), series);
  chart.root.parentElement.querySelector("h3").append(
    el("span", { class: "muted" }, ` (${total.toLocaleString()} points)`));
  return chart;
}

// -- logs --------------------------------------------------------------------------------------

function logViewer(target, path, title) {
  // tail then follow a log: GET path?stream=..&offset=..
  const pre = el("pre", { class: "log", id: "log" }, "");
  const select = el("select", { id: "log-stream" }, el("option", {}, "stdout"), el("option", {}, "stderr"));
  const box = el("div", { class: "card" }, el("div", { class: "toolbar" }, el("b", {}, title), select), pre);
  target.append(box);
  let offset = null;
  const load = async () => {
    const body = await api(path, { stream: select.value, offset });
    if (offset === null) pre.textContent = body.text || body.note || ""; else if (body.text) pre.textContent += body.text;
    offset = body.offset;
    pre.scrollTop = pre.scrollHeight;
  };
  select.addEventListener("change", () => { offset = null; load().catch((e) => { pre.textContent = e.message; }); });
  load().catch((e) => { pre.textContent = e.message; });
  const stop = every(POLL_MS, load);
  return { box, stop };
}

// -- experiments page --------------------------------------------------------------------------

async function experimentsPage() {
  crumbs(["experiments"]);
  const body = el("tbody", { id: "experiments" });
  main().replaceChildren(el("h1", {}, "Experiments"), el("div", { class: "table-wrap" },
    el("table", {}, el("thead", {}, el("tr", {}, ["experiment", "kind", "runs", "live", "created", "last activity"]
      .map((h) => el("th", {}, h)))), body)));
  const load = async () => {
    const data = await api("/experiments");
    body.replaceChildren(...data.experiments.map((e) => el("tr", {},
      el("td", {}, el("a", { href: expPage(e.name) }, e.name)), el("td", {}, e.kind || ""),
      el("td", { class: "num" }, e.runs.toLocaleString()), el("td", { class: "live-counts" }, liveCell(e.live)),
      el("td", {}, when(e.created)),
      el("td", { title: when(e.updated) }, ago(e.updated)))));
    if (!data.experiments.length) body.append(el("tr", {}, el("td", { colspan: 6, class: "muted" }, "no experiments yet")));
  };
  await load();
  every(5000, load);
}

// What runs and waits in an experiment, by the rule of its page's header (trialbook.web.live).
function liveCell(live) {
  const parts = Object.entries(live || {}).filter(([, n]) => n > 0);
  if (!parts.length) return el("span", { class: "muted" }, "idle");
  return parts.map(([k, n]) => el("span", { "data-count": k }, badge(k), " " + n.toLocaleString() + " "));
}

// -- runs page ---------------------------------------------------------------------------------

const state = { where: "", order_by: "", descending: false, limit: 50, offset: 0, selected: new Set() };

function runsToolbar(onApply) {
  const input = el("input", { type: "text", id: "filter", placeholder: 'filter, e.g. lr > 0.01 and status == "done"', value: state.where });
  const apply = () => { state.where = input.value.trim(); state.offset = 0; onApply(); };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
  const size = el("select", { id: "page-size" }, [25, 50, 100, 250].map((n) =>
    el("option", { value: n, selected: n === state.limit }, n + " / page")));
  size.addEventListener("change", () => { state.limit = +size.value; state.offset = 0; onApply(); });
  const compare = el("button", { id: "compare-btn", disabled: true, onclick: () => {
    location.href = expPage(TB.name) + "/compare?runs=" + [...state.selected].sort((a, b) => a - b).join(",");
  } }, "Compare selected");
  const live = el("label", {}, el("input", { type: "checkbox", id: "live-toggle", checked: true }), " live");
  if (![...size.options].some((o) => +o.value === state.limit)) size.append(el("option", { value: state.limit, selected: true }, state.limit + " / page"));
  const table = tableControls(onApply);  // table.js: Columns, Group by, Export
  return { node: el("div", { class: "toolbar" }, input, el("button", { id: "filter-btn", onclick: apply }, "Filter"),
    size, compare, table.node, live), compare, live: live.firstChild, table };
}

function columnsOf(data) {
  const cols = [
    { label: "run", key: "run_id", get: (r) => el("a", { href: expPage(TB.name) + "/runs/" + r.run_id }, r.run_id), num: true },
    { label: "kind", key: "kind", get: (r) => r.kind },
    { label: "status", key: "status", get: (r) => badge(r.status) },
    { label: "duration", key: "duration", get: (r) => duration(r.duration), num: true },
    { label: "result", key: "result", get: (r) => fmt(r.result) },
  ];
  const groups = [["params", "params"], ["fields", "fields"], ["tags", "tags"], ["metrics", "metric"]];
  for (const [slot, prefix] of groups) {
    for (const name of data.columns[slot]) {
      if (slot === "tags" && name === "note") {  // a note is long: its first line, cut
        cols.push({ label: name, group: slot, key: "tags.note", get: (r) => noteCell(r.tags.note) });
        continue;
      }
      cols.push({ label: name, group: slot, key: prefix + "." + name, get: (r) => fmt(r[slot][name]), num: true });
    }
  }
  return cols;
}

function noteCell(text) {
  if (typeof text !== "string") return "";
  const line = text.trim().split("\n")[0];
  return el("span", { class: "note-cell", title: text }, line.length > 40 ? line.slice(0, 40) + "…" : line);
}

function runsTable(data, onSort) {
  const cols = columnsOf(data);
  const head = el("tr", {}, el("th", {}, ""), cols.map((c) => {
    const sorted = state.order_by === c.key || (!state.order_by && c.key === "run_id");
    const cls = "sortable" + (sorted ? (state.descending ? " sorted-desc" : " sorted-asc") : "");
    return el("th", { class: cls, "data-key": c.key, onclick: () => onSort(c.key) },
      c.group ? el("span", { class: "group" }, c.group) : null, c.label);
  }));
  const rows = data.runs.map((r) => el("tr", { "data-run": r.run_id },
    el("td", {}, el("input", { type: "checkbox", class: "pick", checked: state.selected.has(r.run_id),
      onchange: (e) => { e.target.checked ? state.selected.add(r.run_id) : state.selected.delete(r.run_id); state.onSelect(); } })),
    cols.map((c) => el("td", { class: c.num ? "num" : null }, c.get(r)))));
  return el("table", { id: "runs-table" }, el("thead", {}, head), el("tbody", {}, rows));
}

function pager(data, onMove) {
  const first = data.total ? data.offset + 1 : 0;
  const last = Math.min(data.offset + data.runs.length, data.total);
  return el("div", { class: "toolbar", id: "pager" },
    el("button", { class: "ghost", id: "prev", disabled: data.offset <= 0, onclick: () => onMove(-1) }, "‹ prev"),
    el("span", { id: "page-info" }, `${first}–${last} of ${data.total.toLocaleString()} runs`),
    el("button", { class: "ghost", id: "next", disabled: last >= data.total, onclick: () => onMove(1) }, "next ›"));
}

async function runsPage() {
  crumbs(["experiments", "/"], [TB.name]);
  tableStateFromUrl();  // table.js: a shared URL shows the same view
  const tabs = el("div", { class: "tabs" });
  const counts = el("div", { class: "counts", id: "counts" });
  const content = el("div", {});
  const description = el("div", { id: "description-box" });
  main().replaceChildren(el("h1", {}, TB.name), description, counts, tabs, content);
  api(expPath(TB.name) + "/runs", { limit: 0 }).then((data) => description.replaceChildren(noteBlock({
    id: "description", text: data.description,
    empty: "No description yet. Add one from Python: experiment.description = \"...\" then persist(), or session.describe(" + JSON.stringify(TB.name) + ", \"...\").",
    save: async (text) => (await putJson(expPath(TB.name) + "/description", { text })).description,
  }))).catch((e) => description.replaceChildren(el("p", { class: "error" }, e.message)));
  const views = { runs: runsView, scatter: scatterView, parallel: parallelView, overlay: overlayView,
    groups: groupsView, graph: graphView };  // parallel, overlay, groups: static/charts.js
  let stopView = null;
  const show = (name) => {
    if (stopView) stopView();
    tabs.replaceChildren(...Object.keys(views).map((v) => el("a", { href: "#" + v, class: v === name ? "active" : null,
      id: "tab-" + v }, { runs: "Runs", scatter: "Params vs metric", parallel: "Parallel coordinates",
      overlay: "Overlay", groups: "Grouped curves", graph: "Job graph" }[v])));
    content.replaceChildren();
    stopView = views[name](content, counts);
    if (name !== "runs") api(expPath(TB.name) + "/status").then((s) => showCounts(counts, s));
  };
  window.addEventListener("hashchange", () => show(location.hash.slice(1) || "runs"));
  show(location.hash.slice(1) in views ? location.hash.slice(1) : "runs");
}

function showCounts(counts, s) {
  // The server's counts follow one rule (runs by status plus the jobs not recorded as runs
  // yet: trialbook.web.live), the same as the experiments list and the Live list.
  counts.replaceChildren(...Object.entries(s.counts).map(([k, n]) => {
    const extra = (s.unrecorded || {})[k] || 0;
    return el("span", { "data-count": k }, badge(k), " ", n.toLocaleString(),
      extra ? el("span", { class: "muted" }, ` (${extra} ${extra === 1 ? "job" : "jobs"} not recorded yet)`) : null);
  }));
}

// A job's progress (trialbook.progress() in its execute): a bar for the whole job (level 0)
// with its percentage, the finer levels as text.
function progressBar(levels) {
  if (!levels || !levels.length) return null;
  const pct = Math.max(0, Math.min(100, Math.round(100 * levels[0].progress)));
  return el("span", { class: "job-progress", title: progressText(levels) },
    el("progress", { max: 100, value: pct }, pct + "%"),
    el("span", { class: "pct" }, " " + progressText(levels)));
}

// A bad filter: its message, and the filter with a caret under the column where it went wrong
// (the API's QueryError gives query, column, length); the filter box is outlined in red with
// the faulty part selected. An empty error clears both.
function showFilterError(box, e) {
  const input = document.getElementById("filter");
  const b = e && e.body;
  box.replaceChildren(...(e ? [el("div", { class: "message" }, e.message)] : []));
  const isFilter = !!b && typeof b.query === "string";  // not a sort or server error
  if (input) input.classList.toggle("invalid", isFilter);
  if (!isFilter || !b.column) return;
  const start = b.column - 1, length = Math.max(1, b.length || 1);
  box.append(el("pre", { class: "query-caret", id: "filter-caret", "data-column": b.column },
    el("span", {}, b.query.slice(0, start)), el("mark", {}, b.query.slice(start, start + length) || " "),
    el("span", {}, b.query.slice(start + length)), "\n", " ".repeat(start) + "^".repeat(length)
    + " column " + b.column));
  if (input) {
    const lead = input.value.length - input.value.trimStart().length;
    if (input.value.trim() === b.query) input.setSelectionRange(lead + start, lead + start + length);
  }
}

function runsView(content, counts) {
  const toolbar = runsToolbar(() => load(true));
  const error = el("div", { class: "error", id: "filter-error" });
  const wrap = el("div", { class: "table-wrap" });
  const live = el("div", { id: "live" });
  const pagerBox = el("div", {});
  const logBox = el("div", {});
  content.append(toolbar.node, error, wrap, pagerBox, el("h2", {}, "Live"), live, logBox);
  state.onSelect = () => { toolbar.compare.disabled = state.selected.size < 2 || state.selected.size > 10; };
  state.onSelect();
  let viewer = null;
  const openLog = (path, title) => {
    if (viewer) { viewer.stop(); viewer.box.remove(); }
    viewer = logViewer(logBox, path, title);
  };
  let requested = 0;  // a reply to an older request (a poll's, before a new filter) is dropped
  const load = async () => {
    const mine = ++requested;
    try {
      const data = await tableLoad({ wrap, pagerBox, controls: toolbar.table, isCurrent: () => mine === requested, reload: load });
      if (mine !== requested) return;
      showFilterError(error, null);
      if (data && !data.total && !state.where) {  // say why the table is empty while jobs may run
        pagerBox.append(el("p", { class: "muted empty", id: "no-runs" }, "No runs recorded yet. Runs appear here as they are "
          + "recorded (task jobs when they finish); what runs now is listed under Live."));
      }
    } catch (e) {
      if (mine !== requested) return;
      showFilterError(error, e);
      wrap.replaceChildren();
      pagerBox.replaceChildren();
    }
  };
  let last = null;
  const poll = async () => {
    const s = await api(expPath(TB.name) + "/status");
    showCounts(counts, s);
    // The Live list shows what runs; what waits (pending runs, queued jobs) is counted only.
    const waiting = s.waiting.runs + s.waiting.jobs;
    const running = s.live.length + s.jobs.length > 0;
    const busy = running || waiting > 0;
    setLive(busy);
    const waitingLine = waiting ? el("p", { class: "muted", id: "live-waiting" }, waiting.toLocaleString() + " waiting"
      + (s.waiting.jobs ? ` (${s.waiting.runs.toLocaleString()} runs, ${s.waiting.jobs.toLocaleString()} jobs)` : "")) : null;
    live.replaceChildren(running ? el("ul", { class: "live-list" },
      s.live.map((r) => el("li", {}, badge(r.status), " ", el("a", { href: expPage(TB.name) + "/runs/" + r.run_id }, "run " + r.run_id),
        " ", el("span", { class: "muted" }, r.kind + (r.started ? " · started " + ago(r.started) : "")))),
      s.jobs.map((j) => el("li", { "data-job": j.identifier }, badge(j.status), " job ",
        el("span", { class: "job-name", title: (j.task || "") + " " + (j.identifier || "") }, j.name || j.identifier),
        j.progress && j.progress.length ? [" ", progressBar(j.progress)] : null,
        " ", el("a", { href: "#runs", onclick: (e) => { e.preventDefault(); openLog(expPath(TB.name) + "/jobs/" + enc(j.identifier) + "/log", "job " + (j.name || j.identifier)); } }, "log"),
        TB.actions && j.status === "running" ? [" ", el("button", { class: "danger kill", onclick: async () => {
          if (!confirm("Stop job " + (j.name || j.identifier) + "?")) return;
          const r = await fetch("/api" + expPath(TB.name) + "/jobs/" + enc(j.identifier) + "/kill", { method: "POST", credentials: "same-origin" });
          if (!r.ok) alert((await r.json()).error);
        } }, "kill")] : null)))
      : el("p", { class: "muted" }, "nothing running"), ...(waitingLine ? [waitingLine] : []));
    const signature = JSON.stringify([s.updated, s.total, s.counts, s.live.map((r) => [r.run_id, r.status])]);
    if (toolbar.live.checked && (signature !== last || busy)) await load();
    last = signature;
  };
  load().then(poll);
  return every(POLL_MS, poll);
}

// -- params vs metric (scatter) ------------------------------------------------------------------

function scatterView(content) {
  const xs = el("select", { id: "axis-x" }), ys = el("select", { id: "axis-y" });
  const canvas = el("canvas", { class: "scatter", id: "scatter", width: 720, height: 420 });
  const info = el("div", { class: "muted" });
  const logs = scatterLogToggles();  // static/charts.js: automatic log axes, and toggles
  content.append(el("div", { class: "toolbar" }, "x", xs, "y", ys, logs.node), canvas, info);
  api(expPath(TB.name) + "/runs", { limit: 200 }).then((data) => {
    const names = ["run_id", "duration", ...data.columns.params.map((n) => "params." + n),
      ...data.columns.fields.map((n) => "fields." + n), ...data.columns.metrics.map((n) => "metric." + n)];
    for (const n of names) { xs.append(el("option", {}, n)); ys.append(el("option", {}, n)); }
    xs.value = names.find((n) => n.startsWith("params.")) || "run_id";
    ys.value = names.find((n) => n.startsWith("metric.")) || names.find((n) => n.startsWith("fields.")) || "duration";
    let pts = [];
    const plot = () => {
      const hidden = plotScatterAxes(canvas, pts, xs.value, ys.value, logs.logs(pts));
      info.textContent = `${pts.length} of ${total} runs have numeric ${xs.value} and ${ys.value}`
        + (hidden ? ` (${hidden} not positive: not on the log axis)` : "");
    };
    let total = 0;
    const draw = async () => {
      const d = await api(expPath(TB.name) + "/scatter", { axes: xs.value + "," + ys.value, where: state.where });
      pts = d.points.filter((p) => typeof p[1] === "number" && typeof p[2] === "number");
      total = d.total;
      plot();
    };
    const change = () => { logs.reset(); draw(); };
    xs.addEventListener("change", change); ys.addEventListener("change", change);
    logs.inputs.forEach((input) => input.addEventListener("change", plot));
    draw();
  });
  return () => {};
}

// -- job graph ---------------------------------------------------------------------------------

function graphView(content) {
  const box = el("div", { id: "graph" }, el("p", { class: "muted" }, "Loading…"));
  content.append(box);
  const load = async () => {
    const g = await api(expPath(TB.name) + "/graph");
    box.replaceChildren();
    if (g.services.length) {
      box.append(el("h2", {}, "Services"), el("ul", { id: "services" }, g.services.map((s) =>
        el("li", {}, s.url ? el("a", { href: s.url, target: "_blank", rel: "noopener" }, s.id) : s.id, " ",
          el("span", { class: "muted" }, s.description || "")))));
    }
    box.append(el("h2", {}, "Jobs"));
    if (!g.nodes.length) { box.append(el("p", { class: "muted" }, "no jobs recorded for this experiment")); return; }
    box.append(drawGraph(g));
  };
  load();
  return every(POLL_MS * 2, load);
}

function drawGraph(g) {
  const deps = new Map(g.nodes.map((n) => [n.id, []]));
  g.edges.forEach(([a, b]) => deps.get(b).push(a));
  const level = new Map();
  const depth = (id, seen = new Set()) => {
    if (level.has(id)) return level.get(id);
    if (seen.has(id)) return 0;
    seen.add(id);
    const d = Math.max(-1, ...deps.get(id).map((p) => depth(p, seen))) + 1;
    level.set(id, d);
    return d;
  };
  g.nodes.forEach((n) => depth(n.id));
  const columns = [];
  g.nodes.forEach((n) => { (columns[level.get(n.id)] = columns[level.get(n.id)] || []).push(n); });
  const NW = 170, NH = 38, GX = 60, GY = 16, pos = new Map();
  columns.forEach((col, c) => col.forEach((n, r) => pos.set(n.id, [20 + c * (NW + GX), 20 + r * (NH + GY)])));
  const W = 40 + columns.length * (NW + GX), H = 40 + Math.max(...columns.map((c) => c.length)) * (NH + GY);
  const ns = "http://www.w3.org/2000/svg";
  const svg = (tag, attrs, ...kids) => {
    const node = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
    kids.forEach((k) => node.append(k));
    return node;
  };
  const root = svg("svg", { class: "graph", width: W, height: H, id: "job-graph" });
  root.append(svg("defs", {}, svg("marker", { id: "arrow", viewBox: "0 0 10 10", refX: 10, refY: 5, markerWidth: 6, markerHeight: 6, orient: "auto" },
    svg("path", { d: "M0,0 L10,5 L0,10 z", fill: "#888" }))));
  g.edges.forEach(([a, b]) => {
    const [x1, y1] = pos.get(a), [x2, y2] = pos.get(b);
    root.append(svg("path", { d: `M${x1 + NW},${y1 + NH / 2} C${x1 + NW + GX / 2},${y1 + NH / 2} ${x2 - GX / 2},${y2 + NH / 2} ${x2},${y2 + NH / 2}`,
      stroke: "#888", fill: "none", "marker-end": "url(#arrow)" }));
  });
  const fill = { done: "#d3f0dd", failed: "#f8d7d7", running: "#fde9bf" };
  g.nodes.forEach((n) => {
    const [x, y] = pos.get(n.id);
    const label = n.name || (n.task || "job").split(".").pop();
    const group = svg("g", { class: "node", "data-status": n.status, transform: `translate(${x},${y})` },
      svg("rect", { width: NW, height: NH, fill: fill[n.status] || "#eceef2" }),
      svg("text", { x: 8, y: 15 }, document.createTextNode(label.length > 24 ? label.slice(0, 23) + "…" : label)),
      svg("text", { x: 8, y: 30, fill: "#666" }, document.createTextNode(n.status + (n.run_id ? " · run " + n.run_id : "") + (n.status !== "done" && n.progress && n.progress.length ? " · " + progressText(n.progress.slice(0, 1)) : ""))));
    if (n.status === "running" && n.progress && n.progress.length) {  // the job's progress as a bar
      const pct = Math.max(0, Math.min(1, n.progress[0].progress));
      group.append(svg("rect", { class: "progress-track", x: 0, y: NH - 4, width: NW, height: 4, fill: "#0001" }),
        svg("rect", { class: "progress-bar", x: 0, y: NH - 4, width: Math.round(NW * pct), height: 4, fill: "#d08a00" }));
    }
    group.append(svg("title", {}, document.createTextNode((n.name ? n.name + "\n" : "") + n.id)));
    if (n.run_id) {
      const link = svg("a", { href: expPage(TB.name) + "/runs/" + n.run_id });
      link.append(group);
      root.append(link);
    } else root.append(group);
  });
  return root;
}

// -- run page ----------------------------------------------------------------------------------

function previewNode(p) {
  if (p.type === "value") return el("code", {}, fmt(p.value));
  if (p.type === "array") {
    const stats = p.min !== undefined ? ` min ${fmt(p.min)} · max ${fmt(p.max)} · mean ${fmt(p.mean)}` : "";
    return el("div", {}, el("span", { class: "muted" }, `array ${p.dtype} [${p.shape.join(" × ")}]${stats}`),
      el("div", {}, el("code", {}, "[" + p.head.map(fmt).join(", ") + (p.head.length < p.shape.reduce((a, b) => a * b, 1) ? ", …" : "") + "]")));
  }
  if (p.type === "table") {
    return el("div", {}, el("span", { class: "muted" }, `table ${p.shape[0]} rows × ${p.shape[1]} columns`),
      el("table", { class: "preview" }, el("thead", {}, el("tr", {}, el("th", {}, ""), p.columns.map((c) => el("th", {}, c)))),
        el("tbody", {}, p.rows.map((row, i) => el("tr", {}, el("td", { class: "muted" }, p.index[i]), row.map((v) => el("td", {}, fmt(v))))))));
  }
  if (p.type === "pickle") return el("span", { class: "muted" }, `${p.note}, ${p.size} bytes`);
  return el("code", {}, p.value);
}

async function snapshotBlock(target, title, digest) {
  const details = el("details", {}, el("summary", {}, title), el("pre", {}, "…"));
  target.append(details);
  if (!digest) { details.lastChild.textContent = "not recorded"; return; }
  details.addEventListener("toggle", async () => {
    if (details.dataset.loaded) return;
    details.dataset.loaded = "1";
    try { details.lastChild.textContent = (await api("/snapshots/" + digest)).text; }
    catch (e) { details.lastChild.textContent = e.message; }
  });
}

// The environment a run recorded, as tables (the API decodes the snapshot's JSON sections):
// the main sections side by side, build configurations folded, then the packages, sorted by
// name or version, with a filter box.
const ENV_FOLDED = new Set(["numpy", "scipy", "pandas"]);

function envValue(row) {
  if (!row.long) return row.value;
  const lines = row.value.split("\n").length;
  return el("details", { class: "env-long" }, el("summary", {}, lines > 1 ? `${lines} lines` : `${row.value.length} characters`),
    el("pre", {}, row.value));
}

function packagesTable(packages) {
  let key = "name", desc = false;
  const body = el("tbody", {});
  const filter = el("input", { type: "search", id: "package-filter", placeholder: `filter ${packages.length} packages` });
  const info = el("span", { class: "muted", id: "package-count" });
  const head = el("tr", {}, ["name", "version", "location"].map((k) => el("th", { class: "sortable", "data-key": k, onclick: () => {
    desc = key === k ? !desc : false; key = k; draw();
  } }, k)));
  const lower = (p) => String(p[key] || "").toLowerCase();
  const compare = (a, b) => (key === "version"
    ? String(a.version || "").localeCompare(String(b.version || ""), undefined, { numeric: true })
    : lower(a) < lower(b) ? -1 : lower(a) > lower(b) ? 1 : 0);
  const draw = () => {
    const needle = filter.value.trim().toLowerCase();
    const shown = packages.filter((p) => !needle || p.name.toLowerCase().includes(needle)
      || String(p.version || "").toLowerCase().includes(needle)).sort((a, b) => (desc ? -1 : 1) * compare(a, b));
    head.querySelectorAll("th").forEach((th) => { th.className = "sortable" + (th.dataset.key === key ? (desc ? " sorted-desc" : " sorted-asc") : ""); });
    body.replaceChildren(...shown.map((p) => el("tr", { "data-package": p.name }, el("td", {}, p.name),
      el("td", {}, p.version || ""), el("td", { class: "muted location" }, p.location || ""))));
    info.textContent = shown.length === packages.length ? `${packages.length} packages` : `${shown.length} of ${packages.length} packages`;
  };
  filter.addEventListener("input", draw);
  draw();
  return el("div", { class: "packages" }, el("div", { class: "toolbar" }, el("b", {}, "Packages"), filter, info),
    el("div", { class: "table-wrap packages-wrap" }, el("table", { id: "packages" }, el("thead", {}, head), body)));
}

async function environmentBlock(target, digest) {
  const box = el("div", { id: "environment" });
  target.append(el("h3", {}, "Environment"), box);
  if (!digest) {
    box.append(el("p", { class: "muted empty" }, "not recorded: graph trials record their environment; runs of a grid and task jobs do not."));
    return;
  }
  box.append(el("p", { class: "muted" }, "loading…"));
  let env;
  try { env = await api("/environments/" + digest); } catch (e) { box.replaceChildren(el("p", { class: "error" }, e.message)); return; }
  const card = (s) => el("div", { class: "card env-section", "data-section": s.name }, el("b", {}, s.title),
    kvTable(s.rows.map((r) => [r.key, envValue(r)])));
  const open = env.sections.filter((s) => !ENV_FOLDED.has(s.name));
  const folded = env.sections.filter((s) => ENV_FOLDED.has(s.name));
  box.replaceChildren(el("div", { class: "env-grid" }, open.map(card)),
    ...folded.map((s) => el("details", { class: "env-folded", "data-section": s.name },
      el("summary", {}, s.title + " ", el("span", { class: "muted" }, `(${s.rows.length} entries)`)), card(s))),
    env.packages.length ? packagesTable(env.packages) : el("p", { class: "muted" }, "no packages recorded"));
}

// -- artifact browser (run page) ----------------------------------------------------------------

function humanSize(n) {
  if (n < 1024) return n + " B";
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let i = -1;
  do { n /= 1024; i++; } while (n >= 1024 && i < units.length - 1);
  return (n < 10 ? n.toFixed(1) : Math.round(n)) + " " + units[i];
}

function fileUrl(base, artifact, path, what) {
  return "/api" + base + "/files/" + enc(artifact) + "/" + what + (path ? "?path=" + enc(path) : "");
}

function previewPane(p) {
  const head = el("div", { class: "preview-head" }, el("b", {}, p.path || p.name),
    el("span", { class: "muted" }, ` ${p.media_type} · ${humanSize(p.size)}`));
  const note = (text) => el("p", { class: "muted" }, text);
  const more = p.truncated ? note("first part only (" + humanSize(p.size) + " in all): download the file for the rest") : null;
  if (p.type === "image") return [head, el("img", { class: "preview-image", src: p.src, alt: p.path || p.name })];
  if (p.type === "text" || p.type === "json") return [head, p.note ? note(p.note) : null, el("pre", { class: "preview-text" }, p.text), more];
  if (p.type === "table") {
    return [head, el("div", { class: "table-wrap" }, el("table", { class: "preview" },
      el("thead", {}, el("tr", {}, p.columns.map((c) => el("th", {}, c)))),
      el("tbody", {}, p.rows.map((row) => el("tr", {}, row.map((v) => el("td", {}, fmt(v)))))))),
      note(`first ${p.rows.length} rows` + (p.total_rows !== undefined ? ` of ${p.total_rows}` : p.truncated ? " (file cut at 64 KiB)" : ""))];
  }
  return [head, note(p.note || "no preview")];
}

function modelBox(model) {
  if (model.error) return el("div", { class: "model" }, el("span", { class: "error" }, model.error));
  const versions = Object.entries(model.versions || {}).map(([k, v]) => `${k} ${v}`).join(" · ");
  return el("div", { class: "model" },
    el("div", {}, el("b", {}, "model"), " ", model.flavour ? el("span", { class: "flavour" }, model.flavour) : el("span", { class: "muted" }, "flavour unknown"),
      model.class ? el("span", { class: "muted" }, " · " + model.class) : null),
    versions ? el("div", { class: "muted" }, versions) : null,
    el("div", {}, el("code", { class: "load" }, model.load)));
}

async function artifactBrowser(target, base) {
  const { artifacts } = await api(base + "/files");
  if (!artifacts.length) {
    target.replaceChildren(el("p", { class: "muted empty" }, "No artifacts: run.log_artifact(path) in a step stores one (a file, a folder or bytes)."));
    return;
  }
  const pane = el("div", { class: "preview-pane", id: "preview" }, el("p", { class: "muted" }, "Select a file to preview it."));
  const show = async (artifact, path, row) => {
    target.querySelectorAll(".file.selected").forEach((n) => n.classList.remove("selected"));
    row.classList.add("selected");
    pane.replaceChildren(el("p", { class: "muted" }, "loading…"));
    try { pane.replaceChildren(...previewPane(await api(base + "/files/" + enc(artifact) + "/preview", { path })).filter(Boolean)); }
    catch (e) { pane.replaceChildren(el("p", { class: "error" }, e.message)); }
  };
  const fileRow = (artifact, path, label, node) => {
    const row = el("div", { class: "file", "data-artifact": artifact, "data-path": path || "" });
    row.append(el("button", { class: "link", title: "preview", onclick: () => show(artifact, path, row) }, label),
      el("span", { class: "size" }, humanSize(node.size)),
      el("a", { class: "download", href: fileUrl(base, artifact, path, "download"), download: "", title: "download " + (path || artifact) }, "download"));
    return el("li", {}, row);
  };
  const folder = (artifact, label, node, extra) => el("li", {}, el("details", { open: true, class: "folder", "data-path": node.path || "" },
    el("summary", {}, el("span", { class: "name" }, label + "/"), el("span", { class: "size" }, humanSize(node.size))),
    extra || null,
    el("ul", {}, node.children.map((c) => c.type === "folder" ? folder(artifact, c.name, c) : fileRow(artifact, c.path, c.name, c)))));
  const tree = el("ul", { class: "tree", id: "file-tree" }, artifacts.map((a) => a.kind === "folder"
    ? folder(a.name, a.name, a, a.model ? modelBox(a.model) : null)
    : fileRow(a.name, null, a.name, a)));
  target.replaceChildren(el("div", { class: "browser" }, el("div", { class: "tree-wrap" }, tree), pane));
}

async function runPage() {
  crumbs(["experiments", "/"], [TB.name, expPage(TB.name)], ["run " + TB.run_id]);
  const base = expPath(TB.name) + "/runs/" + TB.run_id;
  let run;
  try { run = await api(base); } catch (e) { main().replaceChildren(el("p", { class: "error" }, e.message)); return; }
  const statusCell = el("span", { id: "run-status" }, badge(run.status));
  const summary = kvTable([["status", statusCell], ["kind", run.kind], ["key", run.key || ""], ["seed", fmt(run.seed)],
    ["started", when(run.started)], ["finished", when(run.finished)], ["duration", duration(run.duration)],
    ["result", previewNode(run.result)]]);
  const charts = el("div", { class: "charts", id: "charts" });
  const page = [el("h1", {}, "Run " + run.run_id), el("div", { class: "card" }, summary)];
  if (run.error) page.push(el("h2", {}, "Error"), el("pre", { class: "error" }, run.error.type + ": " + run.error.message + "\n\n" + run.error.traceback));
  const section = (title, entries, id) => entries.length ? [el("h2", {}, title), el("div", { class: "card", id }, kvTable(entries))] : [];
  page.push(...section("Parameters", Object.entries(run.params).map(([k, v]) => [k, previewNode(v)]), "params"));
  page.push(...section("Fields", Object.entries(run.fields).map(([k, v]) => [k, previewNode(v)]), "fields"));
  let version = run.version;
  page.push(el("h2", {}, "Note"), noteBlock({
    id: "note", text: run.tags.note,
    empty: "No note yet. Add one from Python: run.note = \"...\" then persist() (in a graph step: trialbook.current_run().note = \"...\").",
    save: async (text) => {
      const answer = await putJson(base + "/note", { text, version });
      version = answer.version;
      return answer.note;
    },
  }));
  page.push(...section("Tags", Object.entries(run.tags).filter(([k]) => k !== "note").map(([k, v]) => [k, fmt(v)]), "tags"));
  page.push(el("h2", {}, "Metrics"), charts);
  const files = el("div", { class: "card files", id: "files" }, el("p", { class: "muted" }, "loading…"));
  page.push(el("h2", {}, "Artifacts"), files);
  const values = Object.entries(run.artifacts);
  if (values.length) {
    page.push(el("h2", {}, "Stored values"), el("ul", { id: "artifacts" }, values.map(([name, size]) => el("li", {},
      el("a", { href: "/api" + base + "/artifacts/" + enc(name), download: true }, name), el("span", { class: "muted" }, " " + humanSize(size))))));
  }
  const snaps = el("div", {});
  page.push(el("h2", {}, "Code and environment"), snaps);
  const logs = el("div", {});
  if (run.logs.length) page.push(el("h2", {}, "Logs"), logs);
  if (TB.actions) {
    page.push(el("h2", {}, "Actions"), el("button", { class: "danger", id: "delete-run", onclick: async () => {
      if (!confirm("Delete run " + run.run_id + "?")) return;
      await fetch("/api" + base, { method: "DELETE", credentials: "same-origin" });
      location.href = expPage(TB.name);
    } }, "Delete run"));
  }
  main().replaceChildren(...page);
  artifactBrowser(files, base).catch((e) => files.replaceChildren(el("p", { class: "error" }, e.message)));
  snapshotBlock(snaps, "code", run.code);
  environmentBlock(snaps, run.environment);
  if (run.logs.length) logViewer(logs, base + "/log", "log");
  const chartsByName = new Map();
  const drawCharts = async (names) => {
    for (const name of names) chartsByName.set(name, await metricCharts(charts, name, [run.run_id], chartsByName.get(name)));
  };
  const names = Object.keys(run.metrics);
  if (!names.length) charts.append(el("p", { class: "muted" }, "no metrics"));
  await drawCharts(names);
  let live = ["running", "pending"].includes(run.status);
  setLive(live);
  every(POLL_MS, async () => {
    if (!live) return;
    const fresh = await api(base);
    statusCell.replaceChildren(badge(fresh.status));
    live = ["running", "pending"].includes(fresh.status);
    setLive(live);
    const fresher = Object.keys(fresh.metrics);
    if (fresher.length && charts.querySelector("p")) charts.replaceChildren();
    await drawCharts(fresher);
  });
}

// -- comparison page ---------------------------------------------------------------------------

// One run's code or environment against the first run's: identical, a diff, or "not
// recorded" (a run without a snapshot: nothing to compare, so never "identical").
function diffBlock(d) {
  const head = el("h3", {}, `run ${d.against} → run ${d.run_id}`);
  if (d.state === "not recorded") {
    return [head, el("p", { class: "muted not-recorded", "data-state": d.state },
      "not recorded for run " + d.missing.join(" and run ") + ": nothing to compare")];
  }
  if (d.state === "identical" || !d.diff) return [head, el("p", { class: "muted", "data-state": "identical" }, "identical")];
  return [head, el("pre", { class: "diff", "data-state": d.state }, d.diff.split("\n").map((line) => el("span", {
    class: line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : line.startsWith("@@") ? "hunk" : null }, line + "\n")))];
}

function diffSection(title, ids, diffs) {
  const body = ids.length < 2 ? [el("p", { class: "muted" }, "one run: nothing to compare")] : diffs.map(diffBlock).flat();
  return [el("h2", {}, title), ...body];
}

// A cell of a comparison table; arrays and frames add how they differ from the first run's
// (compared by content on the server: "same", "max |Δ| 0.5", "shape [3] ≠ [2]").
function compareCell(r, v, i, ids) {
  const note = r.notes && i > 0 ? r.notes[i] : null;
  const shown = v === null || v === undefined ? el("span", { class: "muted", title: "no value" }, "—") : fmt(v);
  return el("td", {}, shown, note ? el("div", { class: "cmp-note" + (note === "same" ? " muted" : ""),
    title: "run " + ids[i] + " against run " + ids[0] }, note === "same" ? "same as run " + ids[0] : note) : null);
}

function compareTable(title, ids, rows, id) {
  if (!rows.length) return [];
  return [el("h2", {}, title), el("div", { class: "table-wrap" }, el("table", { id, class: "compare" },
    el("thead", {}, el("tr", {}, el("th", {}, "name"), ids.map((i) => el("th", {}, "run " + i)))),
    el("tbody", {}, rows.map((r) => el("tr", { class: r.differs ? "differs" : null, "data-name": r.name },
      el("td", {}, r.name), r.values.map((v, i) => compareCell(r, v, i, ids))))))) ];
}

async function comparePage() {
  const ids = (TB.query.runs || "").split(",").filter(Boolean).map(Number);
  crumbs(["experiments", "/"], [TB.name, expPage(TB.name)], ["compare " + ids.join(", ")]);
  let c;
  try { c = await api(expPath(TB.name) + "/compare", { runs: ids.join(",") }); }
  catch (e) { main().replaceChildren(el("p", { class: "error" }, e.message)); return; }
  const charts = el("div", { class: "charts", id: "charts" });
  main().replaceChildren(
    el("h1", {}, "Comparing runs ", ids.map((id, i) => [i ? ", " : "", el("a", { href: expPage(TB.name) + "/runs/" + id }, id)])),
    ...compareTable("Runs", ids, c.summary.map((r) => r.name === "duration" ? { ...r, values: r.values.map(duration) } : r), "compare-summary"),
    ...compareTable("Parameters", ids, c.params, "compare-params"),
    el("h2", {}, "Metrics"), charts,
    ...compareTable("Fields", ids, c.fields, "compare-fields"),
    ...compareTable("Tags", ids, c.tags, "compare-tags"),
    ...diffSection("Code diff", ids, c.code_diff),
    ...diffSection("Environment diff", ids, c.environment_diff));
  if (!c.metrics.length) charts.append(el("p", { class: "muted" }, "no metrics"));
  for (const name of c.metrics) await metricCharts(charts, name, ids);
}

// -- start -------------------------------------------------------------------------------------

const PAGES = { experiments: experimentsPage, runs: runsPage, run: runPage, compare: comparePage };
(PAGES[TB.page] || experimentsPage)().catch((e) => {
  main().replaceChildren(el("p", { class: "error" }, "Error: " + e.message));
});
