/* trialbook UI, charts of the runs page (issue 15): parallel coordinates with brushing, overlay of
   selected runs, grouped curves with bands, log axes of the scatter. Loaded before app.js: the
   functions here are globals that app.js's runs page calls; they use app.js's helpers (el, api,
   fmt, state, runsTable, COLORS...) at call time. View state lives in the URL under the keys
   pc.* (parallel coordinates) and ov.* (overlay, grouped curves); other keys are kept. */
"use strict";

// -- URL state -----------------------------------------------------------------------------------

function urlGet(key) { return new URLSearchParams(location.search).get(key); }

function urlSet(values) {
  const params = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(values)) {
    if (v === null || v === undefined || v === "" || (Array.isArray(v) && !v.length)) params.delete(k);
    else params.set(k, Array.isArray(v) ? v.join(",") : String(v));
  }
  const query = params.toString();
  history.replaceState(null, "", location.pathname + (query ? "?" + query : "") + location.hash);
}

const urlList = (key) => (urlGet(key) || "").split(",").filter(Boolean);
const shortName = (name) => name.replace(/^params\./, "");

// An axis tick: short (1e-4, 0.25, 1200), whatever the magnitude.
function tickFmt(v) {
  if (typeof v !== "number") return fmt(v);
  const abs = Math.abs(v);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return v.toExponential().replace(/\.?0+e/, "e").replace("e+", "e");
  return String(+v.toPrecision(4));
}

// -- scales and colours --------------------------------------------------------------------------

// Positive numbers spanning >= 2 decades read better on a log axis (the server's rule too).
function spansDecades(values) {
  const xs = values.filter((v) => typeof v === "number" && isFinite(v));
  if (!xs.length) return false;
  const lo = Math.min(...xs), hi = Math.max(...xs);
  return lo > 0 && Math.log10(hi / lo) >= 2;
}

// A linear or log mapping of [lo, hi] onto [a, b], with "nice" tick values.
function makeScale(lo, hi, a, b, log) {
  if (lo === null || hi === null) { lo = 0; hi = 1; }
  if (log && lo > 0) {
    let l0 = Math.log10(lo), l1 = Math.log10(hi);
    if (l0 === l1) { l0 -= 0.5; l1 += 0.5; }
    const map = (v) => (v > 0 ? a + (Math.log10(v) - l0) / (l1 - l0) * (b - a) : NaN);
    const ticks = [];
    for (let e = Math.ceil(l0); e <= Math.floor(l1); e++) ticks.push(10 ** e);
    if (ticks.length < 2) ticks.unshift(lo), ticks.push(hi);
    return { map, invert: (p) => 10 ** (l0 + (p - a) / (b - a) * (l1 - l0)), ticks, log: true };
  }
  if (lo === hi) { lo -= 1; hi += 1; }
  const map = (v) => a + (v - lo) / (hi - lo) * (b - a);
  const step = 10 ** Math.floor(Math.log10((hi - lo) / 4));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => (hi - lo) / s <= 6) || step * 10;
  const ticks = [];
  for (let t = Math.ceil(lo / nice) * nice; t <= hi + nice * 1e-9; t += nice) ticks.push(+t.toPrecision(12));
  return { map, invert: (p) => lo + (p - a) / (b - a) * (hi - lo), ticks, log: false };
}

// A sequential colour scale (blue -> purple -> orange, each end readable on white), t in [0, 1].
const RAMP = [[35, 60, 170], [105, 65, 175], [175, 60, 140], [220, 85, 70], [225, 135, 15]];
function rampColor(t) {
  const x = Math.max(0, Math.min(1, t)) * (RAMP.length - 1), i = Math.min(RAMP.length - 2, Math.floor(x)), f = x - i;
  const c = RAMP[i].map((v, k) => Math.round(v + f * (RAMP[i + 1][k] - v)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}

// A query-language literal of a category value.
function literal(v) {
  if (typeof v === "boolean") return v ? "True" : "False";
  if (typeof v === "number") return String(v);
  return JSON.stringify(String(v));
}

// Round a brush outwards to 3 significant digits, so the filter stays readable.
function roundOut(v, up) {
  if (v === 0 || !isFinite(v)) return v;
  const e = 10 ** (Math.floor(Math.log10(Math.abs(v))) - 2);
  return +((up ? Math.ceil(v / e) : Math.floor(v / e)) * e).toPrecision(3);
}

// -- parallel coordinates ------------------------------------------------------------------------

// The filter of the brushes: each a numeric range or a set of categories; AND-ed.
function brushWhere(brushes) {
  return Object.entries(brushes).map(([name, b]) => b.cats
    ? `${name} in [${b.cats.map(literal).join(", ")}]`
    : `${name} >= ${b.lo} and ${name} <= ${b.hi}`).join(" and ");
}

// The page's filter (kept whole in parentheses) AND-ed with the brushes' filter.
function joinWhere(...parts) {
  const kept = parts.filter((p) => p && p.trim());
  return kept.length > 1 ? kept.map((p, i) => (i === 0 ? `(${p.trim()})` : p)).join(" and ") : (kept[0] || "");
}

// Which runs (row indices) pass every brush, computed in the page (the table asks the server).
function brushedRows(data, brushes) {
  const tests = Object.entries(brushes).map(([name, b]) => {
    const axis = data.axes.find((a) => a.name === name);
    if (!axis) return () => true;
    const at = axis.kind === "category" ? (i) => (axis.values[i] === null ? null : axis.categories[axis.values[i]]) : (i) => axis.values[i];
    if (b.cats) {
      const keep = new Set(b.cats.map((c) => JSON.stringify(c)));
      return (i) => at(i) !== null && keep.has(JSON.stringify(at(i)));
    }
    return (i) => typeof at(i) === "number" && at(i) >= b.lo && at(i) <= b.hi;
  });
  const rows = [];
  for (let i = 0; i < data.run_ids.length; i++) if (tests.every((t) => t(i))) rows.push(i);
  return rows;
}

function pcLayout(data, width, height, logs) {
  const left = 60, right = 70, top = 44, bottom = height - 34;
  const n = data.axes.length;
  const gap = n > 1 ? (width - left - right) / (n - 1) : 0;
  const axes = data.axes.map((axis, i) => {
    const x = n > 1 ? left + i * gap : width / 2;
    if (axis.kind === "category") {
      const k = axis.categories.length;
      const pos = (c) => (k > 1 ? bottom - c * (bottom - top) / (k - 1) : (top + bottom) / 2);
      return { ...axis, x, pos, log: false };
    }
    const log = axis.name in logs ? logs[axis.name] && axis.min > 0 : axis.log;
    const scale = makeScale(axis.min, axis.max, bottom, top, log);
    return { ...axis, x, scale, pos: scale.map, log };
  });
  return { axes, top, bottom, missingY: bottom + 18, width, height };
}

function colorOf(data) {
  const c = data.color;
  if (!c) return { of: () => COLORS[0], legend: null };
  if (c.kind === "category") {
    return { of: (i) => (c.values[i] === null ? "#aaa" : COLORS[c.values[i] % COLORS.length]),
      legend: el("div", { class: "pc-legend", id: "pc-legend" }, el("b", {}, c.name + ": "),
        c.categories.map((cat, k) => el("span", {}, el("i", { style: `background:${COLORS[k % COLORS.length]}` }), fmt(cat)))) };
  }
  const log = spansDecades(c.values);
  const s = makeScale(c.min, c.max, 0, 1, log);
  return { of: (i) => (c.values[i] === null ? "#aaa" : rampColor(s.map(c.values[i]))),
    legend: el("div", { class: "pc-legend", id: "pc-legend" }, el("b", {}, c.name + ": "), tickFmt(c.min), " ",
      el("span", { class: "pc-ramp", style: `background:linear-gradient(to right, ${[0, .25, .5, .75, 1].map(rampColor).join(",")})` }),
      " ", tickFmt(c.max), log ? el("span", { class: "muted" }, " (log)") : null) };
}

function drawParallel(canvas, data, layout, brushes) {
  const ctx = canvas.getContext("2d"), { axes, top, bottom, missingY } = layout;
  const ratio = window.devicePixelRatio || 1;
  canvas.width = layout.width * ratio; canvas.height = layout.height * ratio;
  canvas.style.width = layout.width + "px"; canvas.style.height = layout.height + "px";
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, layout.width, layout.height);
  const ys = (i) => axes.map((a) => (a.values[i] === null ? missingY : a.pos(a.values[i])));
  const active = Object.keys(brushes).length ? new Set(brushedRows(data, brushes)) : null;
  const colour = colorOf(data);
  // one path per colour: thousands of lines in a few strokes
  const paths = new Map();
  const n = data.run_ids.length;
  for (let i = 0; i < n; i++) {
    const key = active && !active.has(i) ? "#d5d9e0" : colour.of(i);
    if (!paths.has(key)) paths.set(key, []);
    paths.get(key).push(i);
  }
  const alpha = n > 2000 ? 0.25 : n > 200 ? 0.5 : 0.85;
  const order = [...paths.keys()].sort((a, b) => (a === "#d5d9e0" ? -1 : b === "#d5d9e0" ? 1 : 0));
  ctx.lineWidth = 1;
  for (const key of order) {
    ctx.strokeStyle = key; ctx.globalAlpha = key === "#d5d9e0" ? 0.5 : alpha;
    ctx.beginPath();
    for (const i of paths.get(key)) {
      const y = ys(i);
      ctx.moveTo(axes[0].x, y[0]);
      for (let k = 1; k < axes.length; k++) ctx.lineTo(axes[k].x, y[k]);
    }
    ctx.stroke();
  }
  ctx.globalAlpha = 1;
  ctx.font = "11px system-ui, sans-serif";
  for (const a of axes) {
    ctx.strokeStyle = "#555"; ctx.beginPath(); ctx.moveTo(a.x, top); ctx.lineTo(a.x, bottom); ctx.stroke();
    ctx.fillStyle = "#1d2433"; ctx.textAlign = "center"; ctx.font = "600 12px system-ui, sans-serif";
    const title = shortName(a.name);
    ctx.fillText(title.length > 22 ? title.slice(0, 21) + "…" : title, a.x, 16);
    ctx.font = "11px system-ui, sans-serif"; ctx.fillStyle = "#6b7385";
    ctx.fillText(a.kind === "category" ? "category" : a.log ? "log" : "", a.x, 30);
    ctx.textAlign = "left"; ctx.fillStyle = "#1d2433";
    const ticks = a.kind === "category" ? a.categories.map((c, k) => [a.pos(k), fmt(c)])
      : a.scale.ticks.map((t) => [a.pos(t), tickFmt(t)]);
    const every = Math.max(1, Math.ceil(ticks.length / 12));
    ticks.forEach(([y, label], k) => {
      if (k % every) return;
      ctx.fillRect(a.x - 3, y, 6, 1);
      ctx.fillText(label.length > 14 ? label.slice(0, 13) + "…" : label, a.x + 5, y + 4);
    });
    if (a.values.some((v) => v === null)) { ctx.fillStyle = "#6b7385"; ctx.fillText("missing", a.x + 5, missingY + 4); }
    const b = brushes[a.name];
    if (b && !b.cats !== (a.kind === "category")) {
      let y0, y1;
      if (b.cats) {
        const ks = b.cats.map((c) => a.categories.findIndex((x) => JSON.stringify(x) === JSON.stringify(c))).filter((k) => k >= 0);
        if (!ks.length) continue;
        y0 = Math.min(...ks.map(a.pos)) - 6; y1 = Math.max(...ks.map(a.pos)) + 6;
      } else { y0 = Math.min(a.pos(b.lo), a.pos(b.hi)); y1 = Math.max(a.pos(b.lo), a.pos(b.hi)); }
      y0 = Math.max(y0, top - 4); y1 = Math.min(y1, bottom + 4);
      ctx.fillStyle = "rgba(47,111,222,0.25)"; ctx.strokeStyle = "#2f6fde";
      ctx.fillRect(a.x - 8, y0, 16, y1 - y0); ctx.strokeRect(a.x - 8, y0, 16, y1 - y0);
    }
  }
  canvas.dataset.layout = JSON.stringify({ top, bottom, axes: axes.map((a) => ({ name: a.name, x: a.x })) });
  return active ? active.size : n;
}

// A drag along an axis sets its brush (a range, or the categories inside it); a click clears it.
function brushHandlers(canvas, getLayout, onBrush) {
  let drag = null;
  const band = el("div", { class: "pc-drag", hidden: true });  // the range being dragged
  canvas.after(band);
  const show = () => {
    band.hidden = !drag;
    if (!drag) return;
    const top = Math.min(drag.y0, drag.y1);
    Object.assign(band.style, { left: drag.axis.x - 8 + "px", top: top + "px", height: Math.abs(drag.y1 - drag.y0) + "px" });
  };
  const at = (e) => { const r = canvas.getBoundingClientRect(); return [e.clientX - r.left, e.clientY - r.top]; };
  canvas.addEventListener("mousedown", (e) => {
    const [x, y] = at(e), layout = getLayout();
    const axis = layout && layout.axes.reduce((best, a) => (Math.abs(a.x - x) < (best ? Math.abs(best.x - x) : 20) ? a : best), null);
    if (axis) { drag = { axis, y0: y, y1: y }; e.preventDefault(); show(); }
  });
  const move = (e) => { if (drag) { drag.y1 = at(e)[1]; show(); } };
  const up = (e) => {
    if (!drag) return;
    const { axis, y0 } = drag, y1 = at(e)[1];
    drag = null;
    show();
    if (Math.abs(y1 - y0) < 4) { onBrush(axis.name, null); return; }
    const [lo, hi] = [Math.min(y0, y1), Math.max(y0, y1)];
    if (axis.kind === "category") {
      const cats = axis.categories.filter((c, k) => axis.pos(k) >= lo - 6 && axis.pos(k) <= hi + 6);
      onBrush(axis.name, cats.length ? { cats } : null);
    } else {
      const a = axis.scale.invert(hi), b = axis.scale.invert(lo);
      onBrush(axis.name, { lo: roundOut(Math.min(a, b), false), hi: roundOut(Math.max(a, b), true) });
    }
  };
  window.addEventListener("mousemove", move);
  window.addEventListener("mouseup", up);
  return () => { window.removeEventListener("mousemove", move); window.removeEventListener("mouseup", up); };
}

function parseBrushes(text) {
  try { const b = JSON.parse(text || "{}"); return b && typeof b === "object" ? b : {}; } catch (e) { return {}; }
}

function parallelView(content) {
  const pc = {
    axes: urlList("pc.axes"), color: urlGet("pc.color") || "", brushes: parseBrushes(urlGet("pc.brush")),
    logs: Object.fromEntries([...urlList("pc.log").map((n) => [n, true]), ...urlList("pc.lin").map((n) => [n, false])]),
  };
  const picker = el("details", { class: "pc-picker", id: "pc-picker" }, el("summary", {}, "Axes"));
  const colorSel = el("select", { id: "pc-color" });
  const info = el("span", { class: "muted", id: "pc-info" });
  const canvas = el("canvas", { class: "pc", id: "pc-canvas" });
  const legend = el("div", {});
  const error = el("div", { class: "error", id: "pc-error" });
  const matchInfo = el("div", { class: "toolbar", id: "pc-match" });
  const tableBox = el("div", { class: "table-wrap", id: "pc-table" });
  const filterLine = el("p", { class: "muted" }, state.where ? ["Runs matching the filter ", el("code", {}, state.where), " (set it in the Runs tab)."] : "All runs (set a filter in the Runs tab). Drag along an axis to brush it; several brushes are AND-ed; click an axis to clear its brush.");
  const wrap = el("div", { class: "pc-wrap" }, canvas);
  content.append(filterLine, el("div", { class: "toolbar" }, picker, el("label", {}, "colour by ", colorSel), info), error, wrap, legend, matchInfo, tableBox);
  let data = null, layout = null, requested = 0;
  const save = () => urlSet({ "pc.axes": pc.axes, "pc.color": pc.color,
    "pc.brush": Object.keys(pc.brushes).length ? JSON.stringify(pc.brushes) : null,
    "pc.log": Object.keys(pc.logs).filter((n) => pc.logs[n]), "pc.lin": Object.keys(pc.logs).filter((n) => !pc.logs[n]) });
  const redraw = () => {
    if (!data) return;
    const width = Math.max(320, Math.min(wrap.clientWidth || 1000, 1600));
    layout = pcLayout(data, width, 440, pc.logs);
    const shown = drawParallel(canvas, data, layout, pc.brushes);
    info.textContent = `${data.count.toLocaleString()} runs drawn` + (data.total > data.count ? ` of ${data.total.toLocaleString()}` : "")
      + (Object.keys(pc.brushes).length ? `, ${shown.toLocaleString()} inside the brushes` : "");
  };
  const loadTable = async () => {
    const mine = ++requested;
    const brush = brushWhere(pc.brushes);
    const where = joinWhere(state.where, brush);
    if (!brush) {
      matchInfo.replaceChildren(el("span", { class: "muted" }, "No brush: drag along an axis to select runs; they are listed here."));
      tableBox.replaceChildren();
      return;
    }
    try {
      const runs = await api(expPath(TB.name) + "/runs", { where, limit: 50, order_by: state.order_by, descending: state.descending });
      if (mine !== requested) return;
      const open = el("a", { id: "pc-open", href: "?" + new URLSearchParams({ where }) + "#runs", onclick: (e) => {
        e.preventDefault(); state.where = where; state.offset = 0; urlSet({ where }); location.hash = "#runs";
      } }, "open in the runs table");
      const overlayBtn = el("button", { class: "ghost", id: "pc-overlay", onclick: async () => {
        const all = await api(expPath(TB.name) + "/parallel", { where, names: "run_id", limit: 51 });
        chartsState.overlay = all.run_ids.slice(0, 50);
        chartsState.overlayNote = all.total > 50 ? `${all.total.toLocaleString()} runs are brushed; the first 50 are overlaid.` : "";
        location.hash = "#overlay";
      } }, "overlay these runs");
      const first = runs.total > runs.runs.length ? el("span", { class: "muted" }, `(the first ${runs.runs.length} below)`) : null;
      matchInfo.replaceChildren(...[el("b", { id: "pc-count" }, `${runs.total.toLocaleString()} runs match`), first, el("code", { class: "pc-where" }, where), open, overlayBtn].filter(Boolean));
      tableBox.replaceChildren(runsTable(runs, (key) => {
        if (state.order_by === key) state.descending = !state.descending; else { state.order_by = key; state.descending = false; }
        loadTable();
      }));
    } catch (e) { if (mine === requested) { matchInfo.replaceChildren(el("span", { class: "error" }, e.message)); tableBox.replaceChildren(); } }
  };
  const onBrush = (name, brush) => {
    if (brush) pc.brushes[name] = brush; else delete pc.brushes[name];
    save(); redraw(); loadTable();
  };
  const stopBrushing = brushHandlers(canvas, () => layout, onBrush);
  state.onSelect = () => {};  // the table's ticks select runs for Overlay; no toolbar here
  const fillPicker = () => {
    const logRow = (a) => a.kind === "number" && a.min > 0
      ? el("label", { class: "muted" }, el("input", { type: "checkbox", class: "pc-log", "data-axis": a.name, checked: (a.name in pc.logs ? pc.logs[a.name] : a.log),
        onchange: (e) => { pc.logs[a.name] = e.target.checked; save(); redraw(); } }), " log") : null;
    const axesByName = new Map(data.axes.map((a) => [a.name, a]));
    picker.replaceChildren(el("summary", {}, `Axes (${data.axes.length})`), el("div", { class: "pc-axes" }, data.available.map((name) =>
      el("div", {}, el("label", {}, el("input", { type: "checkbox", class: "pc-axis", value: name, checked: axesByName.has(name),
        onchange: (e) => {
          const chosen = data.axes.map((a) => a.name).filter((n) => n !== name);
          if (e.target.checked) chosen.push(name);
          pc.axes = data.available.filter((n) => chosen.includes(n));
          for (const b of Object.keys(pc.brushes)) if (!pc.axes.includes(b)) delete pc.brushes[b];
          save(); load();
        } }), " ", name), axesByName.has(name) ? [" ", logRow(axesByName.get(name))] : null))));
    colorSel.replaceChildren(el("option", { value: "" }, "(none)"), ...data.available.map((n) => el("option", { value: n, selected: n === pc.color }, n)));
  };
  colorSel.addEventListener("change", () => { pc.color = colorSel.value; save(); load(); });
  const load = async () => {
    let body;
    try {
      body = await api(expPath(TB.name) + "/parallel", { names: pc.axes.join(","), where: state.where, color: pc.color });
      error.textContent = "";
    } catch (e) {
      if (!pc.axes.length && !pc.color) { error.textContent = e.message; return; }
      // axes of a shared URL that these runs lack: say so, and draw the default axes
      error.textContent = e.message + " — showing the default axes instead.";
      pc.axes = []; pc.color = ""; pc.brushes = {}; save();
      try { body = await api(expPath(TB.name) + "/parallel", { where: state.where }); } catch (e2) { error.textContent = e2.message; return; }
    }
    data = body;
    if (!data.axes.length) {
      canvas.style.display = "none";
      error.replaceChildren(el("span", { class: "muted", id: "pc-empty" }, data.count ? "These runs have no parameters or metrics to draw: choose axes above." : "No runs match: nothing to draw."));
    } else canvas.style.display = "";
    fillPicker();
    const c = colorOf(data);
    legend.replaceChildren(...(c.legend ? [c.legend] : []));
    redraw(); loadTable();
  };
  const onResize = () => redraw();
  window.addEventListener("resize", onResize);
  load();
  return () => { window.removeEventListener("resize", onResize); stopBrushing(); };
}

// -- overlay of selected runs ----------------------------------------------------------------------

const chartsState = { overlay: null, overlayNote: "" };

function ema(values, alpha) {
  if (!alpha) return values;
  let s = null;
  return values.map((v) => { if (v === null) return null; s = s === null ? v : alpha * s + (1 - alpha) * v; return s; });
}

async function metricPicker(select, chosen) {
  const { metrics } = await api(expPath(TB.name) + "/metrics");
  const names = Object.keys(metrics);
  select.replaceChildren(...names.map((n) => el("option", { value: n, selected: n === chosen }, n)));
  if (chosen && names.includes(chosen)) select.value = chosen;
  return names;
}

function chartWidth(box) { return Math.max(420, Math.min((box.clientWidth || 900) - 20, 1400)); }

function overlayView(content) {
  let ids = chartsState.overlay || (state.selected.size ? [...state.selected].sort((a, b) => a - b) : urlList("ov.runs").map(Number));
  const note = chartsState.overlayNote || (ids.length > 50 ? `${ids.length} runs are selected; the first 50 are overlaid.` : "");
  chartsState.overlay = null; chartsState.overlayNote = "";
  ids = ids.slice(0, 50);
  const metric = el("select", { id: "ov-metric" });
  const smooth = el("input", { type: "range", id: "ov-smooth", min: 0, max: 0.99, step: 0.01, value: +(urlGet("ov.smooth") || 0) });
  const smoothText = el("span", { class: "muted" });
  const xSel = el("select", { id: "ov-x" }, [["step", "step"], ["wall", "wall time"], ["relative", "relative time (s)"]].map(([v, l]) =>
    el("option", { value: v, selected: v === (urlGet("ov.x") || "step") }, l)));
  const logY = el("input", { type: "checkbox", id: "ov-log", checked: urlGet("ov.log") === "1" });
  const box = el("div", { class: "chart-box", id: "ov-chart" });
  const msg = el("p", { class: "muted", id: "ov-note" }, note);
  if (!ids.length) {
    content.append(el("div", { class: "chart-box" }, el("p", { class: "muted empty", id: "ov-empty" },
      "No runs selected: tick runs in the Runs tab (up to 50), or brush axes in Parallel coordinates and press \u201coverlay these runs\u201d.")));
    return () => {};
  }
  const which = el("p", { class: "muted", id: "ov-runs" }, `Runs ${ids.join(", ")} (tick runs in the Runs tab to choose others, up to 50).`);
  content.append(el("div", { class: "toolbar" }, el("label", {}, "metric ", metric), el("label", {}, "smoothing ", smooth, smoothText),
    el("label", {}, "x ", xSel), el("label", {}, logY, " log y")), which, msg, box);
  let answer = null;
  const save = () => urlSet({ "ov.runs": ids, "ov.metric": metric.value, "ov.smooth": +smooth.value ? smooth.value : null,
    "ov.x": xSel.value === "step" ? null : xSel.value, "ov.log": logY.checked ? "1" : null });
  const draw = () => {
    smoothText.textContent = " " + (+smooth.value).toFixed(2);
    save();
    box.replaceChildren();
    if (!answer) return;
    if (!answer.runs.length) {
      box.append(el("p", { class: "muted empty", id: "ov-empty" }, (ids.length > 1 ? `None of runs ${ids.join(", ")} logged` : `Run ${ids[0]} did not log`) + ` the metric ${metric.value}.`));
      return;
    }
    const x = xSel.value;
    const series = answer.runs.map((r) => {
      const xs = x === "step" ? r.steps : x === "wall" ? r.times : r.times.map((t) => t - r.times[0]);
      let ys = ema(r.values, +smooth.value);
      if (logY.checked) ys = ys.map((v) => (v !== null && v > 0 ? v : null));
      return { steps: xs, values: ys };
    });
    const data = joinSeries(series);
    const opts = {
      width: chartWidth(content), height: 380, legend: { live: false },
      scales: { x: { time: x === "wall" }, y: logY.checked ? { distr: 3 } : {} },
      series: [{ label: x }, ...answer.runs.map((r, i) => ({ label: r.label, stroke: COLORS[i % COLORS.length], width: 1.5, spanGaps: true, points: { show: false } }))],
      axes: [x === "wall" ? {} : { values: (u, splits) => splits.map(tickFmt) }, { size: 64 }],
    };
    box.append(el("h3", {}, metric.value, answer.distinguishing.length ? el("span", { class: "muted" }, " · runs named by " + answer.distinguishing.map(shortName).join(", ")) : null));
    new uPlot(opts, data, box);
    if (answer.missing.length) box.append(el("p", { class: "muted", id: "ov-missing" }, `${answer.missing.length > 1 ? "runs" : "run"} ${answer.missing.join(", ")} did not log ${metric.value}`));
  };
  const load = async () => {
    if (!ids.length || !metric.value) { draw(); return; }
    try { answer = await api(expPath(TB.name) + "/overlay", { runs: ids.join(","), metric: metric.value, points: 1000 }); draw(); }
    catch (e) { box.replaceChildren(el("p", { class: "error" }, e.message)); }
  };
  metricPicker(metric, urlGet("ov.metric")).then((names) => {
    if (!names.length) { box.append(el("p", { class: "muted empty", id: "ov-empty" }, "No metrics logged in this experiment: run.log_metric(name, value) in a step logs one.")); return; }
    load();
  }).catch((e) => box.replaceChildren(el("p", { class: "error" }, e.message)));
  metric.addEventListener("change", load);
  for (const input of [smooth, xSel, logY]) input.addEventListener(input === smooth ? "input" : "change", draw);
  return () => {};
}

// -- grouped curves with bands ---------------------------------------------------------------------

function groupsView(content) {
  const metric = el("select", { id: "gr-metric" });
  const by = el("select", { id: "gr-by", multiple: true, size: 4 });
  const band = el("select", { id: "gr-band" }, [["minmax", "band: min–max"], ["std", "band: mean ± std"], ["none", "no band"]].map(([v, l]) =>
    el("option", { value: v, selected: v === (urlGet("ov.band") || "minmax") }, l)));
  const box = el("div", { class: "chart-box", id: "gr-chart" });
  const info = el("p", { class: "muted", id: "gr-info" });
  content.append(el("p", { class: "muted" }, "One line per group of runs (the mean over its runs at each step) with a band for their spread",
    state.where ? [", over the runs matching ", el("code", {}, state.where)] : ", over all runs", "."),
  el("div", { class: "toolbar" }, el("label", {}, "metric ", metric), el("label", { class: "gr-by" }, "group by ", by), band), info, box);
  let answer = null;
  const chosen = () => [...by.selectedOptions].map((o) => o.value);
  const draw = () => {
    urlSet({ "ov.metric": metric.value, "ov.group": chosen(), "ov.band": band.value === "minmax" ? null : band.value });
    box.replaceChildren();
    if (!answer) return;
    if (!answer.groups.length) { box.append(el("p", { class: "muted empty", id: "gr-empty" }, `No run of these groups logged ${metric.value}.`)); return; }
    const series = [], specs = [], bands = [];
    answer.groups.forEach((g, i) => {
      const color = COLORS[i % COLORS.length];
      series.push({ steps: g.steps, values: g.mean });
      specs.push({ label: `${g.label} (${g.runs} runs)`, stroke: color, width: 2, spanGaps: true, points: { show: false } });
      if (band.value !== "none") {
        const hi = band.value === "std" ? g.mean.map((m, k) => m + g.std[k]) : g.max;
        const lo = band.value === "std" ? g.mean.map((m, k) => m - g.std[k]) : g.min;
        const at = series.length + 1;
        series.push({ steps: g.steps, values: hi }, { steps: g.steps, values: lo });
        const edge = { stroke: color + "55", width: 0.5, spanGaps: true, points: { show: false } };
        specs.push({ ...edge, label: g.label + (band.value === "std" ? " +std" : " max") }, { ...edge, label: g.label + (band.value === "std" ? " −std" : " min") });
        bands.push({ series: [at, at + 1], fill: color + "26" });
      }
    });
    box.append(el("h3", {}, metric.value, el("span", { class: "muted" }, " grouped by " + answer.by.map(shortName).join(", "))));
    const chart = new uPlot({ width: chartWidth(content), height: 380, legend: { live: false }, scales: { x: { time: false } },
      series: [{ label: "step" }, ...specs], bands, axes: [{}, { size: 64 }] }, joinSeries(series), box);
    // the band edges are drawn, not listed: one legend entry per group
    const rows = chart.root.querySelectorAll(".u-legend .u-series");
    specs.forEach((spec, k) => { if (!spec.label.endsWith(" runs)") && rows[k]) rows[k].style.display = "none"; });
    if (band.value !== "none") box.append(el("p", { class: "muted" }, band.value === "std" ? "Bands: mean ± population standard deviation over the group's runs." : "Bands: min–max over the group's runs."));
    box.dataset.groups = answer.groups.length;
  };
  const load = async () => {
    const names = chosen();
    if (!names.length) { answer = null; draw(); box.append(el("p", { class: "muted empty", id: "gr-empty" }, "Choose one or more parameters to group by (ctrl-click for several), e.g. all but the seed.")); info.textContent = ""; return; }
    try {
      answer = await api(expPath(TB.name) + "/curves", { metric: metric.value, by: names.join(","), where: state.where, points: 500 });
      info.textContent = `${answer.groups.length} groups of ${answer.used.toLocaleString()} runs` + (answer.truncated ? ` (the first ${answer.used.toLocaleString()} of ${answer.total.toLocaleString()})` : "")
        + (answer.without_metric ? `; ${answer.without_metric} runs did not log ${metric.value}` : "");
      draw();
    } catch (e) { answer = null; box.replaceChildren(el("p", { class: "error" }, e.message)); }
  };
  Promise.all([metricPicker(metric, urlGet("ov.metric")), api(expPath(TB.name) + "/parallel", { names: "run_id", where: state.where, limit: 1000 })]).then(([names, pcData]) => {
    const wanted = urlList("ov.group");
    by.replaceChildren(...pcData.available.filter((n) => n.startsWith("params.")).map((n) => el("option", { value: n, selected: wanted.includes(n) }, n)));
    if (!names.length) { box.append(el("p", { class: "muted empty", id: "gr-empty" }, "No metrics logged in this experiment.")); return; }
    load();
  }).catch((e) => box.replaceChildren(el("p", { class: "error" }, e.message)));
  metric.addEventListener("change", load); by.addEventListener("change", load); band.addEventListener("change", draw);
  return () => {};
}

// -- scatter with log axes -------------------------------------------------------------------------

// Draw the scatter's points; logs = {x, y}: log axes (positive values only are drawn on them).
function plotScatterAxes(canvas, pts, xl, yl, logs) {
  const ctx = canvas.getContext("2d"), W = canvas.width, H = canvas.height, m = 54;
  ctx.clearRect(0, 0, W, H);
  const keep = pts.filter((p) => (!logs.x || p[1] > 0) && (!logs.y || p[2] > 0));
  const range = (i) => (keep.length ? [Math.min(...keep.map((p) => p[i])), Math.max(...keep.map((p) => p[i]))] : [0, 1]);
  const [x0, x1] = range(1), [y0, y1] = range(2);
  const sx = makeScale(x0, x1, m + 10, W - m / 2 - 10, logs.x), sy = makeScale(y0, y1, H - m - 10, m / 2 + 10, logs.y);
  ctx.strokeStyle = "#999"; ctx.strokeRect(m, m / 2, W - 1.5 * m, H - 1.5 * m);
  ctx.fillStyle = "#333"; ctx.font = "12px sans-serif"; ctx.textAlign = "center";
  ctx.fillText(xl + (logs.x ? " (log)" : ""), W / 2, H - 8);
  sx.ticks.forEach((t) => { const x = sx.map(t); if (x < m - 1 || x > W - m / 2 + 1) return; ctx.fillRect(x, H - m, 1, 5); ctx.fillText(tickFmt(t), x, H - m + 17); });
  ctx.textAlign = "right";
  sy.ticks.forEach((t) => { const y = sy.map(t); if (y < m / 2 - 1 || y > H - m + 1) return; ctx.fillRect(m - 5, y, 5, 1); ctx.fillText(tickFmt(t), m - 7, y + 4); });
  ctx.save(); ctx.translate(12, H / 2); ctx.rotate(-Math.PI / 2); ctx.textAlign = "center"; ctx.fillText(yl + (logs.y ? " (log)" : ""), 0, 0); ctx.restore();
  ctx.fillStyle = COLORS[0] + "b0";
  for (const p of keep) { ctx.beginPath(); ctx.arc(sx.map(p[1]), sy.map(p[2]), 3.5, 0, 2 * Math.PI); ctx.fill(); }
  canvas.dataset.log = (logs.x ? "x" : "") + (logs.y ? "y" : "");
  return pts.length - keep.length;
}

// Log toggles of the scatter: set automatically when an axis's values span >= 2 decades, until
// the user ticks them.
function scatterLogToggles() {
  const x = el("input", { type: "checkbox", id: "scatter-logx" }), y = el("input", { type: "checkbox", id: "scatter-logy" });
  const touched = { x: false, y: false };
  x.addEventListener("change", () => { touched.x = true; }); y.addEventListener("change", () => { touched.y = true; });
  return {
    node: [el("label", {}, x, " log x"), el("label", {}, y, " log y")], inputs: [x, y],
    reset: () => { touched.x = touched.y = false; },
    logs: (pts) => {
      if (!touched.x) x.checked = spansDecades(pts.map((p) => p[1]));
      if (!touched.y) y.checked = spansDecades(pts.map((p) => p[2]));
      return { x: x.checked, y: y.checked };
    },
  };
}
