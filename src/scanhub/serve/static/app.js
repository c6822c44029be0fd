// scanhub's page: reads only the public JSON API and the live stream. Vendor text is data from
// outside: it is only ever set with textContent, and links are only followed when http(s).
// The view (filters, sort, window, the open item) lives in the URL: a link reproduces it, and
// back/forward move through it. Charts are SVG drawn here; no library, no CDN.

const PAGE = 200;
const LIFECYCLES = ["queued", "running", "succeeded", "failed", "cancelled", "expired", "unknown"];
const VERDICTS = ["pass", "warn", "fail", "error", "none"];
const FILTERS = ["vendor", "kind", "lifecycle", "verdict", "q"];
const SORTS = ["key", "changed", "since", "vendor", "source", "kind", "lifecycle", "verdict", "application"];
const DEFAULTS = { sort: "-changed", window: "24h" };
const SVG = "http://www.w3.org/2000/svg";
const OUTCOME_TEXT = {
  queued: "queued", running: "running", succeeded: "succeeded", blocked: "blocked (verdict)",
  failed: "failed", cancelled: "cancelled or expired", unknown: "unknown",
};
const BASIS = { configured: "configured", p90: "the p90 of 7 days", default: "the default" };

const state = {
  view: { filters: {}, sort: DEFAULTS.sort, window: DEFAULTS.window, item: null },
  cursors: [null],
  page: 0,
  next: null,
  source: null,
  reloadTimer: null,
  statsTimer: null,
  pending: new Map(),
  away: null, // since when the service has not been ready (its store away), or null
  checking: false, // a /readyz read under way
  itemsAsked: 0, // reads of the items asked so far (the newest one's answer is shown)
  frame: 0,
  opener: null,
  firstRows: false,
  stats: null,
  resizeTimer: null,
};

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

async function api(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
}

// --- the view in the URL ----------------------------------------------------------------------

// The API searches 3 characters or more (read from an index of 3-character pieces); a shorter
// search is not sent. Characters as the API counts them (code points, not UTF-16 units).
const MIN_SEARCH = 3;

function searchable(text) {
  return [...text].length >= MIN_SEARCH;
}

function readUrl() {
  const params = new URLSearchParams(window.location.search);
  const filters = {};
  for (const name of FILTERS) {
    const value = params.get(name);
    if (value && (name !== "q" || searchable(value))) filters[name] = value;
  }
  let sort = params.get("sort") || DEFAULTS.sort;
  if (!SORTS.includes(sort.replace(/^-/, ""))) sort = DEFAULTS.sort;
  let win = params.get("window") || DEFAULTS.window;
  if (!["24h", "7d", "30d"].includes(win)) win = DEFAULTS.window;
  return { filters, sort, window: win, item: params.get("item") || null };
}

function urlOf(view) {
  const params = new URLSearchParams();
  for (const name of FILTERS) if (view.filters[name]) params.set(name, view.filters[name]);
  if (view.sort !== DEFAULTS.sort) params.set("sort", view.sort);
  if (view.window !== DEFAULTS.window) params.set("window", view.window);
  if (view.item) params.set("item", view.item);
  const query = params.toString();
  return window.location.pathname + (query ? `?${query}` : "");
}

function setView(change, { replace = false } = {}) {
  state.view = { ...state.view, ...change };
  const url = urlOf(state.view);
  if (url === window.location.pathname + window.location.search) return;
  if (replace) window.history.replaceState(null, "", url);
  else window.history.pushState(null, "", url);
}

function showView() {
  // The form and headers as the view says.
  document.getElementById("sort").value = state.view.sort;
  for (const field of document.querySelectorAll("#filters select:not(#sort), #filters input")) {
    const value = state.view.filters[field.name] || "";
    if (field.tagName === "SELECT" && value && ![...field.options].some((o) => o.value === value)) {
      field.append(new Option(value, value));
    }
    // A search box holding text too short to search (no search) keeps what is typed in it.
    const typed = field.name === "q" && !searchable(field.value) ? "" : field.value;
    if (typed !== value) field.value = value;
  }
  document.getElementById("window").value = state.view.window;
  const [name, desc] = [state.view.sort.replace(/^-/, ""), state.view.sort.startsWith("-")];
  for (const th of document.querySelectorAll("#item-table th[data-sort]")) {
    const on = th.dataset.sort === name;
    th.setAttribute("aria-sort", on ? (desc ? "descending" : "ascending") : "none");
    const button = th.querySelector("button");
    button.querySelector(".arrow").textContent = on ? (desc ? " ↓" : " ↑") : "";
  }
  const period = { "24h": "hour", "7d": "6 hours", "30d": "day" }[state.view.window];
  document.getElementById("activity-title").textContent =
    `Transitions per ${period}, by outcome (last ${state.view.window})`;
}

function query(extra = {}) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(state.view.filters)) if (value) params.set(name, value);
  for (const [name, value] of Object.entries(extra)) params.set(name, value);
  return params;
}

// --- durations --------------------------------------------------------------------------------

function human(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${String(s % 60).padStart(2, "0")}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
  return `${Math.floor(s / 86400)}d ${String(Math.floor((s % 86400) / 3600)).padStart(2, "0")}h`;
}

function ago(iso) {
  if (!iso) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 60) return `${Math.round(seconds)} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86400)} d ago`;
}

function safeUrl(url) {
  if (!url) return null;
  try {
    const parsed = new URL(url, window.location.href);
    return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
  } catch {
    return null;
  }
}

function reportLink(item) {
  const links = item.links || {};
  const url = safeUrl(links.report_html || links.self || links.status || "");
  if (!url) return null;
  const a = el("a", "report");
  a.href = url;
  a.rel = "noopener noreferrer";
  a.target = "_blank";
  return a;
}

// --- the table ----------------------------------------------------------------------------------

const LABELS = ["vendor", "source", "kind", "application", "id", "lifecycle", "verdict", "findings",
  "gates", "status", "duration", "last change", "report"];

function cell(label, text, cls) {
  const td = el("td", text, cls);
  td.dataset.label = label;
  return td;
}

function durationCell(item) {
  const td = cell("duration", null, "duration");
  const t = item.timing;
  if (!t) return td;
  const unfinished = !["succeeded", "failed", "cancelled", "expired"].includes(item.lifecycle);
  td.append(el("span", t.total_seconds === null ? "–" : human(t.total_seconds)));
  const parts = [];
  if (t.queued_seconds !== null) parts.push(`queued ${human(t.queued_seconds)}`);
  if (t.running_seconds !== null) parts.push(`running ${human(t.running_seconds)}`);
  if (unfinished && parts.length) parts[parts.length - 1] += " so far";
  if (t.total_seconds === null && !unfinished) parts.push("first seen finished");
  if (parts.length) td.append(el("small", parts.join(" · ")));
  return td;
}

function row(item) {
  const tr = el("tr");
  tr.dataset.key = item.key;
  tr.tabIndex = 0;
  tr.setAttribute("aria-label", `${item.vendor} ${item.kind} ${item.id}: ${item.lifecycle}`);
  tr.append(cell("vendor", item.vendor), cell("source", item.source), cell("kind", item.kind));
  let app = item.application_name || item.application_id;
  if (item.version) app += ` @ ${item.version}`;
  if (item.target_stage) app += ` → ${item.target_stage}`;
  if (item.scan_type) app += ` (${item.scan_type})`;
  tr.append(cell("application", app), cell("id", item.id, "mono"));
  const lifecycle = cell("lifecycle");
  const known = LIFECYCLES.includes(item.lifecycle) ? item.lifecycle : "unknown";
  lifecycle.append(el("span", item.lifecycle, `badge lc-${known}`));
  if (item.stuck) {
    const badge = el("span", "stuck", "badge stuck");
    const t = item.timing;
    if (t) badge.title = `under way longer than ${human(t.stuck_after_seconds)} (${BASIS[t.stuck_basis] || t.stuck_basis})`;
    lifecycle.append(" ", badge);
  }
  tr.append(lifecycle);
  const verdict = VERDICTS.includes(item.verdict) ? item.verdict : "none";
  tr.append(cell("verdict", item.verdict, `v-${verdict}`));
  const f = item.findings;
  tr.append(cell("findings", f ? `${f.critical}C ${f.high}H ${f.medium}M ${f.low}L` : ""));
  const gates = (item.gates || []).map((g) => `${g.kind}: ${g.verdict}`).join(", ");
  tr.append(cell("gates", gates));
  const message = cell("status", null, "msg");
  message.append(el("div", item.vendor_status));
  if (item.message) message.append(el("div", item.message));
  if (item.error) message.append(el("div", `⚠ ${item.error.type}: ${item.error.message}`, "src-err"));
  tr.append(message, durationCell(item));
  const when = cell("last change", ago(item.last_change));
  when.dataset.time = item.last_change || "";
  tr.append(when);
  const report = cell("report");
  const link = reportLink(item);
  if (link) report.append(link);
  tr.append(report);
  return tr;
}

async function loadItems() {
  const params = query({ limit: String(PAGE), sort: state.view.sort });
  const cursor = state.cursors[state.page];
  if (cursor) params.set("cursor", cursor);
  // Answers can arrive out of order (a search typed on): only the newest read's is shown.
  const asked = ++state.itemsAsked;
  const data = await api(`/api/v1/items?${params}`);
  if (asked !== state.itemsAsked) return;
  const body = document.getElementById("rows");
  body.replaceChildren(...data.items.map(row));
  if (!state.firstRows && data.items.length) {
    state.firstRows = true;
    performance.mark("scanhub:first-rows");
  }
  state.next = data.next_cursor;
  document.getElementById("prev").disabled = state.page === 0;
  document.getElementById("next").disabled = !state.next;
  const first = state.page * PAGE + (data.items.length ? 1 : 0);
  document.getElementById("page-info").textContent =
    `${first}–${state.page * PAGE + data.items.length} of ${data.total}`;
}

// --- summary, sources, sinks ----------------------------------------------------------------

async function loadSummary() {
  const data = await api("/api/v1/summary");
  const totals = {};
  for (const counts of Object.values(data.by_vendor_lifecycle)) {
    for (const [lifecycle, n] of Object.entries(counts)) totals[lifecycle] = (totals[lifecycle] || 0) + n;
  }
  const chips = [el("span", null, "count")];
  chips[0].append(el("b", data.total), "items");
  for (const lifecycle of LIFECYCLES) {
    if (!totals[lifecycle]) continue;
    const chip = el("span", null, `count lc-${lifecycle}`);
    chip.append(el("b", totals[lifecycle]), lifecycle);
    chips.push(chip);
  }
  for (const [verdict, n] of Object.entries(data.by_verdict)) {
    if (verdict === "none") continue;
    const chip = el("span", null, "count");
    chip.append(el("b", n), `verdict ${verdict}`);
    chips.push(chip);
  }
  document.getElementById("counts").replaceChildren(...chips);
  const vendors = document.querySelector("#filters select[name=vendor]");
  const have = new Set([...vendors.options].map((o) => o.value));
  for (const vendor of Object.keys(data.by_vendor_lifecycle)) {
    if (!have.has(vendor)) vendors.append(new Option(vendor, vendor));
  }
}

async function loadSources() {
  const data = await api("/api/v1/sources");
  document.getElementById("source-list").replaceChildren(
    ...data.sources.map((s) => {
      const li = el("li", null, s.up ? "src-up" : "src-down");
      li.append(el("span", s.up ? "up" : "down", `badge ${s.up ? "ok" : "bad"}`), " ");
      li.append(el("b", s.name), ` ${s.vendor} · ${s.items} items`);
      if (s.paused_until) li.append(el("span", ` · paused until ${s.paused_until}`, "src-err"));
      if (!s.up && s.last_error) li.append(el("div", s.last_error.message, "src-err"));
      return li;
    }),
  );
}

async function loadSinks() {
  // Sink health, as GET /api/v1/sinks answers it: state, deliveries, lag, last success and
  // last error (a receiver's words: set as text, like everything from outside).
  const note = document.getElementById("sink-note");
  const list = document.getElementById("sink-list");
  let data;
  try {
    data = await api("/api/v1/sinks");
  } catch (error) {
    note.textContent = `sinks could not be read (${error.message})`;
    return;
  }
  note.textContent = data.sinks.length ? "" : "No sinks configured.";
  list.replaceChildren(
    ...data.sinks.map((s) => {
      const known = ["active", "retrying", "disabled"].includes(s.state) ? s.state : "retrying";
      const li = el("li", null, `sink sink-${known}`);
      li.dataset.sink = s.name;
      li.append(el("span", s.state, `badge ${known === "active" ? "ok" : "bad"} sink-state`), " ");
      li.append(el("b", s.name), ` ${s.kind} → ${s.target}`);
      let line = ` · ${s.delivered} delivered${s.signed ? " (signed)" : ""}`;
      if (s.failures) line += ` · ${s.failures} failed attempts (retried)`;
      if (s.dead) line += ` · ${s.dead} dead`;
      line += ` · lag ${s.lag_events}`;
      if (s.lag_seconds) line += ` (${Math.round(s.lag_seconds)} s)`;
      if (s.last_success) line += ` · last success ${ago(s.last_success)}`;
      li.append(line);
      if (s.last_error) {
        const when = s.last_error.at ? ` (${ago(s.last_error.at)})` : "";
        li.append(el("div", `last error${when}: ${s.last_error.message}`, "src-err"));
      }
      return li;
    }),
  );
}

// --- time in state: charts ----------------------------------------------------------------------

async function loadStats() {
  const data = await api(`/api/v1/stats?window=${state.view.window}&group_by=source`);
  state.stats = data;
  drawStats(data);
}

function drawStats(data) {
  drawActivity(data);
  drawDurations(data);
  drawStuck(data.stuck);
}

function redrawSoon() {
  clearTimeout(state.resizeTimer);
  state.resizeTimer = setTimeout(() => state.stats && drawStats(state.stats), 150);
}

function drawActivity(data) {
  const { bucket_seconds: bucket, outcomes } = data.activity;
  const start = Math.floor(Date.parse(data.since) / 1000 / bucket) * bucket;
  const end = Date.parse(data.until) / 1000;
  const counts = new Map(data.activity.buckets.map((b) => [Date.parse(b.start) / 1000, b.counts]));
  const slots = [];
  for (let t = start; t < end; t += bucket) slots.push([t, counts.get(t) || {}]);
  const box = document.getElementById("activity-chart");
  const width = Math.max(280, Math.round(box.clientWidth || 640)), height = 180, left = 36, bottom = 22, top = 8;
  const most = Math.max(1, ...slots.map(([, c]) => Object.values(c).reduce((a, b) => a + b, 0)));
  const step = (width - left) / slots.length;
  const scale = (height - bottom - top) / most;
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-labelledby": "activity-title activity-desc", class: "svg-chart",
  });
  const total = slots.reduce((n, [, c]) => n + Object.values(c).reduce((a, b) => a + b, 0), 0);
  chart.append(svg("desc", { id: "activity-desc" }, `${total} transitions; at most ${most} in one bucket`));
  chart.append(svg("line", { x1: left, y1: height - bottom, x2: width, y2: height - bottom, class: "axis" }));
  chart.append(svg("text", { x: left - 4, y: top + 10, "text-anchor": "end", class: "tick" }, most));
  chart.append(svg("text", { x: left - 4, y: height - bottom, "text-anchor": "end", class: "tick" }, 0));
  slots.forEach(([t, c], i) => {
    let y = height - bottom;
    const group = svg("g", { class: "bar", "data-start": new Date(t * 1000).toISOString() });
    for (const outcome of outcomes) {
      const n = c[outcome] || 0;
      if (!n) continue;
      const h = n * scale;
      y -= h;
      const rect = svg("rect", {
        x: left + i * step + 1, y, width: Math.max(1, step - 2), height: h,
        class: `seg o-${outcome}`, "data-outcome": outcome, "data-n": n,
      });
      rect.append(svg("title", {}, `${new Date(t * 1000).toLocaleString()}: ${n} ${OUTCOME_TEXT[outcome] || outcome}`));
      group.append(rect);
    }
    chart.append(group);
  });
  const labels = Math.max(2, Math.min(6, Math.floor((width - left) / 90), slots.length));
  for (let k = 0; k < labels; k++) {
    const i = Math.floor((k * (slots.length - 1)) / Math.max(1, labels - 1));
    const when = new Date(slots[i][0] * 1000);
    const text = bucket >= 86400 ? when.toLocaleDateString([], { month: "short", day: "numeric" })
      : when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    const anchor = k === 0 ? "start" : k === labels - 1 ? "end" : "middle";
    const x = k === 0 ? left + i * step : k === labels - 1 ? left + (i + 1) * step : left + i * step + step / 2;
    chart.append(svg("text", { x, y: height - 6, "text-anchor": anchor, class: "tick" }, text));
  }
  box.replaceChildren(chart);
  const seen = outcomes.filter((o) => slots.some(([, c]) => c[o]));
  document.getElementById("activity-legend").replaceChildren(
    ...seen.map((o) => {
      const li = el("li");
      li.append(el("span", null, `swatch o-${o}`), OUTCOME_TEXT[o] || o);
      return li;
    }),
  );
  const table = document.getElementById("activity-table");
  const head = el("tr");
  head.append(el("th", "from"), ...seen.map((o) => el("th", OUTCOME_TEXT[o] || o)));
  const rows = slots.filter(([, c]) => Object.keys(c).length).map(([t, c]) => {
    const tr = el("tr");
    tr.append(el("td", new Date(t * 1000).toLocaleString()), ...seen.map((o) => el("td", c[o] || 0)));
    return tr;
  });
  const thead = el("thead");
  thead.append(head);
  const tbody = el("tbody");
  tbody.append(...rows);
  table.replaceChildren(thead, tbody);
}

function drawDurations(data) {
  const groups = data.groups.filter((g) => g.finished > 0);
  const box = document.getElementById("durations-chart");
  const table = document.getElementById("durations-table");
  if (!groups.length) {
    box.replaceChildren(el("p", `Nothing finished in the last ${data.window}.`, "muted"));
    table.replaceChildren();
    return;
  }
  // Per source: its name, then per phase a line of figures over a bar (p90, with p50 darker),
  // so that it reads at any width.
  const width = Math.max(280, Math.round(box.clientWidth || 640));
  const line = 15, bar = 9, gap = 10;
  const block = line + 2 * (line + bar + 4) + gap;
  const height = groups.length * block;
  const longest = Math.max(1, ...groups.flatMap((g) => [g.queued.p90 || 0, g.running.p90 || 0]));
  const scale = (width - 2) / longest;
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`, width, height, role: "img",
    "aria-labelledby": "durations-title durations-desc", class: "svg-chart durations",
  });
  chart.append(svg("desc", { id: "durations-desc" }, groups.map((g) =>
    `${g.source}: queued p90 ${human(g.queued.p90)}, running p90 ${human(g.running.p90)}`).join("; ")));
  groups.forEach((g, i) => {
    let y = i * block;
    chart.append(svg("text", { x: 0, y: y + line - 3, class: "label" }, `${g.source} (${g.finished} finished)`));
    y += line;
    for (const phase of ["queued", "running"]) {
      const s = g[phase];
      const group = svg("g", { class: `dur ${phase}`, "data-source": g.source, "data-phase": phase });
      const text = s.n ? `${phase} ${human(s.p50)} · ${human(s.p90)} · ${human(s.max)}` : `${phase}: not seen`;
      group.append(svg("text", { x: 0, y: y + line - 3, class: "value" }, text));
      if (s.n) {
        group.append(svg("rect", { x: 0, y: y + line, width: Math.max(1, (s.p90 || 0) * scale), height: bar, class: `p90 ph-${phase}` }));
        group.append(svg("rect", { x: 0, y: y + line, width: Math.max(1, (s.p50 || 0) * scale), height: bar, class: `p50 ph-${phase}` }));
      }
      group.append(svg("title", {}, `${g.source} ${phase}: p50 ${human(s.p50)}, p90 ${human(s.p90)}, longest ${human(s.max)} (${s.n} items)`));
      chart.append(group);
      y += line + bar + 4;
    }
  });
  box.replaceChildren(chart);
  const thead = el("thead");
  const head = el("tr");
  head.append(...["source", "finished", "failed", "blocked", "queued p50", "queued p90", "running p50", "running p90"].map((t) => el("th", t)));
  thead.append(head);
  const tbody = el("tbody");
  tbody.append(...groups.map((g) => {
    const tr = el("tr");
    tr.append(el("td", g.source), el("td", g.finished), el("td", `${Math.round(g.failure_rate * 100)}%`),
      el("td", `${Math.round(g.blocked_rate * 100)}%`), el("td", human(g.queued.p50)), el("td", human(g.queued.p90)),
      el("td", human(g.running.p50)), el("td", human(g.running.p90)));
    return tr;
  }));
  table.replaceChildren(thead, tbody);
}

function drawStuck(stuck) {
  const list = document.getElementById("stuck-list");
  list.replaceChildren(...stuck.map((s) => {
    const li = el("li", null, s.stuck ? "has-stuck" : "");
    li.append(el("span", s.stuck ? `${s.stuck} stuck` : "none stuck", `badge ${s.stuck ? "stuck" : "ok"}`), " ");
    li.append(el("b", `${s.source} ${s.kind}`), ` · after ${human(s.stuck_after_seconds)} (${BASIS[s.basis] || s.basis})`);
    return li;
  }));
}

// --- one item's timeline ------------------------------------------------------------------------

async function openItem(key, { focus = true } = {}) {
  const panel = document.getElementById("detail");
  const body = document.getElementById("detail-body");
  const title = document.getElementById("detail-title");
  panel.hidden = false;
  document.body.classList.add("with-detail");
  title.textContent = "Loading…";
  body.replaceChildren();
  const path = `/api/v1/items/${encodeURIComponent(key)}`;
  let item, history;
  try {
    [item, history] = await Promise.all([api(path), api(`${path}/history`)]);
  } catch (error) {
    title.textContent = "Not found";
    body.replaceChildren(el("p", String(error.message)));
    if (focus) title.focus();
    return;
  }
  if (state.view.item !== key) return; // another item was opened meanwhile
  title.textContent = `${item.vendor} ${item.kind} ${item.id}`;
  const facts = el("dl", null, "facts");
  const fact = (name, value) => {
    if (value === null || value === undefined || value === "") return;
    facts.append(el("dt", name), el("dd", value));
  };
  fact("application", item.application_name || item.application_id);
  fact("lifecycle", item.stuck ? `${item.lifecycle} (stuck)` : item.lifecycle);
  fact("verdict", item.verdict);
  fact("vendor status", item.vendor_status);
  fact("message", item.message);
  const t = item.timing;
  if (t) {
    fact("queued", human(t.queued_seconds));
    fact("running", human(t.running_seconds));
    fact("in all", human(t.total_seconds));
    fact("stuck after", `${human(t.stuck_after_seconds)} (${BASIS[t.stuck_basis] || t.stuck_basis})`);
  }
  const parts = [facts];
  const link = reportLink(item);
  if (link) {
    link.textContent = "open the vendor's report";
    const p = el("p");
    p.append(link);
    parts.push(p);
  }
  if ((item.gates || []).length) {
    parts.push(el("h3", "Gates"));
    const gates = el("ul", null, "gates");
    for (const g of item.gates) {
      const li = el("li");
      li.append(el("b", `${g.kind}${g.stage ? ` (${g.stage})` : ""}: `), el("span", g.verdict, `v-${VERDICTS.includes(g.verdict) ? g.verdict : "none"}`));
      if (g.explanation) li.append(el("div", g.explanation, "muted"));
      gates.append(li);
    }
    parts.push(gates);
  }
  parts.push(el("h3", "Timeline"));
  const events = history.events;
  const list = el("ol", null, "timeline");
  events.forEach((e, i) => {
    const d = e.data;
    const li = el("li");
    const was = d.previous_lifecycle || "new";
    li.append(el("time", new Date(e.time).toLocaleString()));
    li.dateTime = e.time;
    const change = el("div", null, "change");
    change.append(el("span", was, "from"), " → ", el("span", d.lifecycle, `badge lc-${LIFECYCLES.includes(d.lifecycle) ? d.lifecycle : "unknown"}`));
    if (d.verdict && d.verdict !== "none") change.append(" ", el("span", `verdict ${d.verdict}`, `v-${d.verdict}`));
    li.append(change);
    if (d.vendor_status) li.append(el("div", d.vendor_status, "muted"));
    const nextTime = i + 1 < events.length ? Date.parse(events[i + 1].time) : null;
    const terminal = ["succeeded", "failed", "cancelled", "expired"].includes(d.lifecycle);
    if (nextTime !== null) li.append(el("div", `${human((nextTime - Date.parse(e.time)) / 1000)} in ${d.lifecycle}`, "stay"));
    else if (!terminal) li.append(el("div", `${human((Date.now() - Date.parse(e.time)) / 1000)} in ${d.lifecycle} so far`, "stay"));
    list.append(li);
  });
  if (!events.length) list.append(el("li", "No recorded transitions (yet)."));
  parts.push(list);
  body.replaceChildren(...parts);
  if (focus) title.focus();
}

function closeItem() {
  const panel = document.getElementById("detail");
  if (panel.hidden) return;
  panel.hidden = true;
  document.body.classList.remove("with-detail");
  const opener = state.opener && document.querySelector(`#rows tr[data-key="${CSS.escape(state.opener)}"]`);
  if (opener) opener.focus();
}

function chooseItem(key) {
  state.opener = key;
  setView({ item: key });
  openItem(key);
}

// --- loading and live updates -------------------------------------------------------------------

async function reload() {
  try {
    await Promise.all([loadItems(), loadSummary(), loadSources(), loadSinks()]);
    if (state.away) return; // the status line says the service is not ready
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    if (!state.away) document.getElementById("updated").textContent = String(error);
  }
}

async function reloadStats() {
  try {
    await loadStats();
  } catch (error) {
    if (!state.away) document.getElementById("updated").textContent = String(error);
  }
}

function soon() {
  // Many changes at once become one reload; the charts at most every few seconds.
  clearTimeout(state.reloadTimer);
  state.reloadTimer = setTimeout(reload, 400);
  if (!state.statsTimer) {
    state.statsTimer = setTimeout(() => {
      state.statsTimer = null;
      reloadStats();
    }, 3000);
  }
}

function flush() {
  // The changes of one frame, each row once (the newest state wins).
  state.frame = 0;
  const changes = [...state.pending.values()];
  state.pending.clear();
  for (const cloudEvent of changes) {
    const item = cloudEvent.data;
    const existing = document.querySelector(`#rows tr[data-key="${CSS.escape(item.key)}"]`);
    if (!existing) continue;
    const fresh = row({ ...item, last_change: cloudEvent.time, timing: null, stuck: false });
    fresh.classList.add("flash");
    existing.replaceWith(fresh);
  }
  soon(); // order, timing, counts, sources, charts and items new to this page
}

function onChange(event) {
  const cloudEvent = JSON.parse(event.data);
  state.pending.set(cloudEvent.data.key, cloudEvent);
  if (!state.frame) state.frame = requestAnimationFrame(flush);
}

function connect() {
  if (state.source) state.source.close();
  const source = new EventSource(`/api/v1/events/stream?${query()}`);
  state.source = source;
  const live = document.getElementById("live");
  source.onopen = () => {
    // Open, but nothing can come while the service is not ready: the badge says that.
    live.textContent = state.away ? "not ready" : "live";
    live.className = state.away ? "live off" : "live on";
  };
  source.onerror = () => {
    live.textContent = "reconnecting";
    live.className = "live off";
  };
  source.addEventListener("change", onChange);
  source.addEventListener("reset", () => reload());
}

// Whether the service is ready (its store answers), from /readyz every few seconds: while it
// is not, no transition comes, the stream stays open all the same, and what is shown may be out
// of date. The badge and the status line say so; once it is ready again the page reads again.
async function checkReady() {
  if (state.checking) return; // one at a time: answers never arrive out of order
  state.checking = true;
  let reason = null;
  try {
    const response = await fetch("/readyz", {
      headers: { Accept: "application/json" },
      signal: AbortSignal.timeout(4000),
    });
    if (!response.ok) {
      reason = `HTTP ${response.status}`;
      try {
        reason = (await response.json()).detail || reason;
      } catch {
        // no problem document: the status says enough
      }
    }
  } catch {
    reason = "the service does not answer";
  } finally {
    state.checking = false;
  }
  const live = document.getElementById("live");
  if (reason !== null) {
    state.away = state.away || new Date();
    live.textContent = "not ready";
    live.className = "live off";
    live.title = reason;
    document.getElementById("updated").textContent =
      `not ready since ${state.away.toLocaleTimeString()} (${reason}): what is shown may be out of date`;
  } else if (state.away) {
    state.away = null;
    live.title = "live updates";
    if (!state.source || state.source.readyState === EventSource.CLOSED) {
      connect(); // an EventSource answered other than 200 never reconnects by itself
    } else {
      const open = state.source.readyState === EventSource.OPEN;
      live.textContent = open ? "live" : "reconnecting";
      live.className = open ? "live on" : "live off";
    }
    reload();
    reloadStats();
  }
}

function restart() {
  state.cursors = [null];
  state.page = 0;
  showView();
  reload();
  connect();
}

function start() {
  state.view = readUrl();
  let typing = null;
  document.getElementById("sort").addEventListener("change", (e) => {
    setView({ sort: e.target.value });
    restart();
  });
  for (const field of document.querySelectorAll("#filters select:not(#sort), #filters input")) {
    field.addEventListener(field.tagName === "INPUT" ? "input" : "change", () => {
      // Shorter than a search: no search (nothing is read again while it stays so).
      const value = field.name === "q" && !searchable(field.value) ? "" : field.value;
      if ((state.view.filters[field.name] || "") === value) return;
      const filters = { ...state.view.filters, [field.name]: value };
      if (!value) delete filters[field.name];
      // Typing replaces the history entry it started; a choice adds one.
      setView({ filters }, { replace: field.tagName === "INPUT" && typing !== null });
      clearTimeout(typing);
      typing = field.tagName === "INPUT" ? setTimeout(() => { typing = null; }, 1000) : null;
      restart();
    });
  }
  document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());
  for (const th of document.querySelectorAll("#item-table th[data-sort]")) {
    const button = el("button", th.textContent, "sort");
    button.type = "button";
    button.append(el("span", "", "arrow"));
    th.replaceChildren(button);
    button.addEventListener("click", () => {
      const name = th.dataset.sort;
      const current = state.view.sort;
      // A new column: newest change first, longest under way first, else A to Z; again: reversed.
      let sort = name === "changed" ? "-changed" : name;
      if (current.replace(/^-/, "") === name) sort = current.startsWith("-") ? name : `-${name}`;
      setView({ sort });
      restart();
    });
  }
  document.getElementById("window").addEventListener("change", (e) => {
    setView({ window: e.target.value });
    showView();
    reloadStats();
  });
  const rows = document.getElementById("rows");
  rows.addEventListener("click", (e) => {
    if (e.target.closest("a")) return;
    const tr = e.target.closest("tr[data-key]");
    if (tr) chooseItem(tr.dataset.key);
  });
  rows.addEventListener("keydown", (e) => {
    const tr = e.target.closest("tr[data-key]");
    if (!tr || e.target !== tr) return;
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      chooseItem(tr.dataset.key);
    } else if (e.key === "ArrowDown" && tr.nextElementSibling) {
      e.preventDefault();
      tr.nextElementSibling.focus();
    } else if (e.key === "ArrowUp" && tr.previousElementSibling) {
      e.preventDefault();
      tr.previousElementSibling.focus();
    }
  });
  document.getElementById("detail-close").addEventListener("click", () => {
    setView({ item: null });
    closeItem();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && !document.getElementById("detail").hidden) {
      setView({ item: null });
      closeItem();
    }
  });
  window.addEventListener("popstate", () => {
    const before = state.view;
    state.view = readUrl();
    if (state.view.item !== before.item) {
      if (state.view.item) openItem(state.view.item, { focus: false });
      else closeItem();
    }
    if (state.view.window !== before.window) reloadStats();
    if (urlOf({ ...state.view, item: null, window: "" }) !== urlOf({ ...before, item: null, window: "" })) restart();
    else showView();
  });
  document.getElementById("next").addEventListener("click", () => {
    if (!state.next) return;
    state.cursors[state.page + 1] = state.next;
    state.page += 1;
    loadItems();
  });
  document.getElementById("prev").addEventListener("click", () => {
    if (state.page === 0) return;
    state.page -= 1;
    loadItems();
  });
  setInterval(() => loadSinks().catch(() => {}), 5000); // retries move without transitions
  setInterval(() => checkReady().catch(() => {}), 5000);
  checkReady().catch(() => {});
  setInterval(() => {
    for (const td of document.querySelectorAll("td[data-time]")) td.textContent = ago(td.dataset.time);
  }, 10000);
  window.addEventListener("resize", redrawSoon);
  showView();
  reload();
  reloadStats();
  connect();
  if (state.view.item) openItem(state.view.item, { focus: false });
}

start();
