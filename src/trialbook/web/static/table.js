/* trialbook UI: the runs table (issue 15): chosen and ordered columns, nested parameters as
   dotted columns with compact cells, sorting on the server, grouped rows (count, mean ± std),
   export as CSV or Parquet, and the table's state in the page's URL. Loaded before app.js:
   these functions are globals that app.js's runs page calls; they use app.js's helpers (el,
   api, fmt, badge, state...) at call time. */
"use strict";

// -- the state in the URL: where, order_by, desc, cols, group, sel, limit, offset -------------

const TABLE_KEYS = ["where", "order_by", "desc", "cols", "group", "sel", "limit", "offset"];
const list = (text) => (text || "").split(",").map((s) => s.trim()).filter(Boolean);

// Read the table's state from the page's URL (other keys are left for their owners).
function tableStateFromUrl() {
  const q = new URLSearchParams(location.search);
  state.where = q.get("where") || "";
  state.order_by = q.get("order_by") || "";
  state.descending = ["1", "true", "yes"].includes((q.get("desc") || "").toLowerCase());
  state.cols = q.has("cols") ? list(q.get("cols")) : null;
  state.group = list(q.get("group"));
  state.selected = new Set(list(q.get("sel")).map(Number).filter(Number.isInteger));
  const limit = parseInt(q.get("limit"), 10), offset = parseInt(q.get("offset"), 10);
  state.limit = limit > 0 && limit <= 1000 ? limit : 50;
  state.offset = offset > 0 ? offset : 0;
}

// Write the table's state into the URL (replaceState: no history entry per click); keys that
// are not the table's (charts' pc.*, ov.*) and the tab (#hash) stay.
function tableStateToUrl() {
  const q = new URLSearchParams(location.search);
  for (const k of TABLE_KEYS) q.delete(k);
  const put = (k, v) => { if (v !== "" && v !== null && v !== undefined) q.set(k, v); };
  put("where", state.where);
  put("order_by", state.order_by);
  if (state.descending) q.set("desc", "1");
  if (state.cols) q.set("cols", state.cols.join(","));
  put("group", (state.group || []).join(","));
  put("sel", [...state.selected].sort((a, b) => a - b).join(","));
  if (state.limit !== 50) q.set("limit", state.limit);
  if (state.offset) q.set("offset", state.offset);
  const text = q.toString();
  history.replaceState(null, "", location.pathname + (text ? "?" + text : "") + location.hash);
}

function tableParams(extra) {
  const p = { where: state.where, order_by: state.order_by, desc: state.descending ? 1 : "",
    cols: state.cols ? state.cols.join(",") : "" };
  return Object.assign(p, extra || {});
}

// -- controls: Columns menu, Group by, Export ---------------------------------------------------

function columnTitle(c) {
  return c.group ? c.group + " · " + c.label : c.label;
}

function tableControls(onApply) {
  const columns = el("details", { class: "menu", id: "columns-menu" }, el("summary", {}, "Columns"));
  const colPanel = el("div", { class: "menu-panel", id: "columns-panel" });
  columns.append(colPanel);
  const grouping = el("details", { class: "menu", id: "group-menu" }, el("summary", { id: "group-summary" }, "Group by"));
  const groupPanel = el("div", { class: "menu-panel", id: "group-panel" });
  grouping.append(groupPanel);
  const csv = el("a", { class: "button ghost", id: "export-csv", download: "" }, "Export CSV");
  const parquet = el("a", { class: "button ghost", id: "export-parquet", download: "" }, "Parquet");
  const node = el("span", { class: "table-controls" }, columns, grouping, csv, parquet);
  let shown = [], others = [];
  const apply = (cols) => { state.cols = cols; state.offset = 0; onApply(); };

  const drawColumns = () => {
    const move = (i, d) => {
      const keys = shown.map((c) => c.key);
      const j = i + d;
      if (j < 0 || j >= keys.length) return;
      [keys[i], keys[j]] = [keys[j], keys[i]];
      apply(keys);
    };
    colPanel.replaceChildren(...[
      el("p", { class: "muted" }, "Shown, in order (untick to hide):"),
      el("ul", { class: "col-list" }, shown.map((c, i) => el("li", {},
        el("label", {}, el("input", { type: "checkbox", class: "col-toggle", value: c.key, checked: true,
          onchange: () => apply(shown.filter((x) => x.key !== c.key).map((x) => x.key)) }), " ", columnTitle(c)),
        el("button", { class: "ghost tiny", title: "move left", disabled: i === 0, onclick: () => move(i, -1) }, "↑"),
        el("button", { class: "ghost tiny", title: "move right", disabled: i === shown.length - 1, onclick: () => move(i, 1) }, "↓")))),
      others.length ? el("p", { class: "muted" }, "Hidden:") : null,
      el("ul", { class: "col-list" }, others.map((c) => el("li", {},
        el("label", {}, el("input", { type: "checkbox", class: "col-toggle", value: c.key,
          onchange: () => apply([...shown.map((x) => x.key), c.key]) }), " ", columnTitle(c))))),
      el("button", { class: "ghost", id: "columns-reset", onclick: () => apply(null) }, "Default columns"),
    ].filter(Boolean));
  };

  const drawGroups = () => {
    const candidates = [...shown, ...others].filter((c) => c.group === "params" || c.group === "tags"
      || ["kind", "status"].includes(c.key));
    const chosen = new Set(state.group);
    for (const key of state.group) if (!candidates.some((c) => c.key === key)) candidates.push({ key, label: key, group: "" });
    groupPanel.replaceChildren(...[
      candidates.length ? el("p", { class: "muted" }, "One row per distinct value of the chosen columns (typically all but the seed):")
        : el("p", { class: "muted" }, "No parameters to group by."),
      el("ul", { class: "col-list" }, candidates.map((c) => el("li", {}, el("label", {},
        el("input", { type: "checkbox", class: "group-key", value: c.key, checked: chosen.has(c.key),
          onchange: (e) => {
            state.group = e.target.checked ? [...state.group, c.key] : state.group.filter((k) => k !== c.key);
            state.offset = 0; onApply();
          } }), " ", columnTitle(c))))),
      state.group.length ? el("button", { class: "ghost", id: "group-clear", onclick: () => { state.group = []; onApply(); } }, "Ungroup") : null,
    ].filter(Boolean));
    grouping.querySelector("summary").textContent = state.group.length ? "Group by (" + state.group.length + ")" : "Group by";
  };

  const update = (data) => {
    if (data && data.columns) { shown = data.columns; others = data.available || []; }
    drawColumns();
    drawGroups();
    const base = "/api" + expPath(TB.name) + "/export?";
    const query = (format) => new URLSearchParams(Object.entries(tableParams({ format }))
      .filter(([, v]) => v !== "" && v !== null && v !== undefined)).toString();
    csv.href = base + query("csv");
    parquet.href = base + query("parquet");
  };
  update(null);
  return { node, update };
}

// -- the table ---------------------------------------------------------------------------------

// A cell: cut to its box, the whole value on hover.
function tableCell(key, value, row) {
  if (key === "run_id") return el("a", { href: expPage(TB.name) + "/runs/" + row.run_id }, value);
  if (key === "status") return badge(value);
  if (key === "duration") return duration(value);
  if (key === "tags.note") return noteCell(value);
  const text = fmt(value);
  return text.length > 12 ? el("span", { class: "cell", title: text }, text) : text;
}

function tableHead(columns, onSort) {
  return el("tr", {}, el("th", {}, ""), columns.map((c) => {
    const sorted = state.order_by === c.key || (!state.order_by && c.key === "run_id");
    const cls = [c.sortable ? "sortable" : null, sorted ? (state.descending ? "sorted-desc" : "sorted-asc") : null]
      .filter(Boolean).join(" ");
    return el("th", { class: cls || null, "data-key": c.key, title: c.key,
      onclick: c.sortable ? () => onSort(c.key) : null },
      c.group ? el("span", { class: "group" }, c.group) : null, el("span", { class: "label" }, c.label));
  }));
}

function tableRender(data, onSort) {
  const rows = data.rows.map((r) => el("tr", { "data-run": r.run_id },
    el("td", {}, el("input", { type: "checkbox", class: "pick", checked: state.selected.has(r.run_id),
      onchange: (e) => {
        e.target.checked ? state.selected.add(r.run_id) : state.selected.delete(r.run_id);
        state.onSelect();
        tableStateToUrl();
      } })),
    data.columns.map((c, i) => el("td", { class: typeof r.cells[i] === "number" ? "num" : null },
      tableCell(c.key, r.cells[i], r)))));
  const empty = data.rows.length ? null : el("tr", {}, el("td", { colspan: data.columns.length + 1, class: "muted" },
    data.total ? "No runs on this page." : (state.where ? "No run matches this filter." : "No runs yet.")));
  return el("table", { id: "runs-table", class: "runs" }, el("thead", {}, tableHead(data.columns, onSort)),
    el("tbody", {}, rows, empty));
}

function meanStd(stat) {
  if (!stat || stat[0] === null) return "";
  return stat[1] === null ? fmt(stat[0]) : fmt(stat[0]) + " ± " + fmt(stat[1]);
}

// The grouped table: one row per group, its count linking to the runs table filtered to it.
function groupsRender(data) {
  const link = (g) => {
    const q = new URLSearchParams(location.search);
    for (const k of ["group", "offset", "sel"]) q.delete(k);
    q.set("where", g.where);
    return expPage(TB.name) + "?" + q.toString() + "#runs";
  };
  const head = el("tr", {},
    data.group.map((k) => el("th", { "data-key": k, title: k }, el("span", { class: "group" }, "group"), el("span", { class: "label" }, k))),
    el("th", { "data-key": "count" }, "runs"),
    data.columns.map((k) => {
      const [group, label] = k.includes(".") ? [k.split(".")[0], k.slice(k.indexOf(".") + 1)] : ["", k];
      return el("th", { "data-key": k, title: k + " (mean ± std)" }, el("span", { class: "group" }, group ? group + " · mean ± std" : "mean ± std"),
        el("span", { class: "label" }, label));
    }));
  const rows = data.groups.map((g, i) => el("tr", { "data-group": i },
    g.values.map((v) => el("td", {}, tableCell("", v, {}))),
    el("td", { class: "num" }, el("a", { href: link(g), class: "group-link", title: g.where }, g.count.toLocaleString())),
    data.columns.map((k) => el("td", { class: "num" }, meanStd(g.stats[k])))));
  const empty = data.groups.length ? null : el("tr", {}, el("td", { colspan: data.group.length + 1 + data.columns.length, class: "muted" },
    state.where ? "No run matches this filter." : "No runs yet."));
  return el("div", {},
    el("p", { class: "muted", id: "group-info" }, `${data.groups.length.toLocaleString()} groups of ${data.total.toLocaleString()} runs`
      + (data.truncated ? " (the first 1,000 groups shown)" : "") + "; a group's count opens its runs."),
    el("table", { id: "groups-table", class: "runs" }, el("thead", {}, head), el("tbody", {}, rows, empty)));
}

// Load the table (or the grouped table) into `wrap`, its pager into `pagerBox`; `isCurrent`
// tells whether this answer is still wanted (a newer request drops it).
// A grouped table reads every matching run: the live poll refreshes it at most every 10 s.
const GROUP_REFRESH_MS = 10000;
let lastGroups = { key: "", at: 0 };

async function tableLoad({ wrap, pagerBox, controls, isCurrent, reload }) {
  tableStateToUrl();
  if (state.group && state.group.length) {
    const params = tableParams({ group: state.group.join(",") });
    const key = JSON.stringify(params);
    if (key === lastGroups.key && Date.now() - lastGroups.at < GROUP_REFRESH_MS && wrap.querySelector("#groups-table")) return;
    lastGroups = { key, at: Date.now() };
    const [data, columns] = await Promise.all([
      api(expPath(TB.name) + "/groups", params),
      api(expPath(TB.name) + "/table", tableParams({ limit: 0 }))]);
    if (!isCurrent()) return;
    wrap.replaceChildren(groupsRender(data));
    pagerBox.replaceChildren();
    controls.update(columns);
    return;
  }
  const data = await api(expPath(TB.name) + "/table", tableParams({ limit: state.limit, offset: state.offset }));
  if (!isCurrent()) return;
  controls.update(data);
  wrap.replaceChildren(tableRender(data, (key) => {
    if (state.order_by === key || (!state.order_by && key === "run_id")) state.descending = !state.descending;
    else { state.order_by = key; state.descending = false; }
    state.offset = 0;
    reload();
  }));
  pagerBox.replaceChildren(pager({ ...data, runs: data.rows }, (dir) => {
    state.offset = Math.max(0, state.offset + dir * state.limit); reload();
  }));
  return data;
}
