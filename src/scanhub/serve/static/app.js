// scanhub's page: reads only the public JSON API and the live stream. Vendor text is data from
// outside: it is only ever set with textContent, and links are only followed when http(s).

const PAGE = 200;
const LIFECYCLES = ["queued", "running", "succeeded", "failed", "cancelled", "expired", "unknown"];
const VERDICTS = ["pass", "warn", "fail", "error", "none"];
const state = { cursors: [null], page: 0, next: null, source: null, reloadTimer: null };

function el(tag, text, cls) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (cls) node.className = cls;
  return node;
}

function filters() {
  const params = new URLSearchParams();
  for (const field of document.querySelectorAll("#filters select, #filters input")) {
    if (field.value) params.set(field.name, field.value);
  }
  return params;
}

async function api(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
  return response.json();
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

function row(item) {
  const tr = el("tr");
  tr.dataset.key = item.key;
  tr.append(el("td", item.vendor), el("td", item.source), el("td", item.kind));
  let app = item.application_name || item.application_id;
  if (item.version) app += ` @ ${item.version}`;
  if (item.target_stage) app += ` → ${item.target_stage}`;
  if (item.scan_type) app += ` (${item.scan_type})`;
  tr.append(el("td", app), el("td", item.id, "mono"));
  const lifecycle = el("td");
  const known = LIFECYCLES.includes(item.lifecycle) ? item.lifecycle : "unknown";
  lifecycle.append(el("span", item.lifecycle, `badge lc-${known}`));
  if (item.stuck) lifecycle.append(el("span", "stuck", "badge stuck"));
  tr.append(lifecycle);
  const verdict = VERDICTS.includes(item.verdict) ? item.verdict : "none";
  tr.append(el("td", item.verdict, `v-${verdict}`));
  const f = item.findings;
  tr.append(el("td", f ? `${f.critical}C ${f.high}H ${f.medium}M ${f.low}L` : ""));
  const gates = (item.gates || []).map((g) => `${g.kind}: ${g.verdict}`).join(", ");
  tr.append(el("td", gates));
  const message = el("td", null, "msg");
  message.append(el("div", item.vendor_status));
  if (item.message) message.append(el("div", item.message));
  if (item.error) message.append(el("div", `⚠ ${item.error.type}: ${item.error.message}`, "src-err"));
  tr.append(message);
  const when = el("td", ago(item.last_change));
  when.dataset.time = item.last_change || "";
  tr.append(when);
  const report = el("td");
  const links = item.links || {};
  const url = safeUrl(links.report_html || links.self || links.status || "");
  if (url) {
    const a = el("a", "report");
    a.href = url;
    a.rel = "noopener noreferrer";
    a.target = "_blank";
    report.append(a);
  }
  tr.append(report);
  return tr;
}

async function loadItems() {
  const params = filters();
  params.set("limit", String(PAGE));
  const cursor = state.cursors[state.page];
  if (cursor) params.set("cursor", cursor);
  const data = await api(`/api/v1/items?${params}`);
  const body = document.getElementById("rows");
  body.replaceChildren(...data.items.map(row));
  state.next = data.next_cursor;
  document.getElementById("prev").disabled = state.page === 0;
  document.getElementById("next").disabled = !state.next;
  const first = state.page * PAGE + (data.items.length ? 1 : 0);
  document.getElementById("page-info").textContent =
    `${first}–${state.page * PAGE + data.items.length} of ${data.total}`;
}

async function loadSummary() {
  const data = await api("/api/v1/summary");
  const totals = {};
  for (const row of Object.values(data.by_vendor_lifecycle)) {
    for (const [lifecycle, n] of Object.entries(row)) totals[lifecycle] = (totals[lifecycle] || 0) + n;
  }
  const counts = document.getElementById("counts");
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
  counts.replaceChildren(...chips);
  const vendors = document.querySelector("#filters select[name=vendor]");
  const have = new Set([...vendors.options].map((o) => o.value));
  for (const vendor of Object.keys(data.by_vendor_lifecycle)) {
    if (!have.has(vendor)) vendors.append(new Option(vendor, vendor));
  }
}

async function loadSources() {
  const data = await api("/api/v1/sources");
  const list = document.getElementById("source-list");
  list.replaceChildren(
    ...data.sources.map((s) => {
      const li = el("li", null, s.up ? "src-up" : "src-down");
      li.append(el("b", s.name), ` ${s.vendor} · ${s.items} items`);
      if (s.paused_until) li.append(el("span", ` · paused until ${s.paused_until}`, "src-err"));
      if (!s.up && s.last_error) li.append(el("div", s.last_error.message, "src-err"));
      return li;
    }),
  );
}

async function loadSinks() {
  // Sink health: state, deliveries, lag, last success and last error (all set as text).
  const data = await api("/api/v1/sinks");
  const section = document.getElementById("sinks");
  section.hidden = data.sinks.length === 0;
  const list = document.getElementById("sink-list");
  list.replaceChildren(
    ...data.sinks.map((s) => {
      const known = ["active", "retrying", "disabled"].includes(s.state) ? s.state : "retrying";
      const li = el("li", null, `sink sink-${known}`);
      li.dataset.sink = s.name;
      li.append(el("b", s.name), ` ${s.kind} → ${s.target} · `, el("span", s.state, "sink-state"));
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

async function reload() {
  try {
    await Promise.all([loadItems(), loadSummary(), loadSources(), loadSinks()]);
    document.getElementById("updated").textContent = `updated ${new Date().toLocaleTimeString()}`;
  } catch (error) {
    document.getElementById("updated").textContent = String(error);
  }
}

function soon() {
  // Many changes at once become one reload.
  clearTimeout(state.reloadTimer);
  state.reloadTimer = setTimeout(reload, 400);
}

function onChange(event) {
  const cloudEvent = JSON.parse(event.data);
  const item = cloudEvent.data;
  const existing = document.querySelector(`#rows tr[data-key="${CSS.escape(item.key)}"]`);
  if (existing) {
    const fresh = row({ ...item, last_change: cloudEvent.time });
    fresh.classList.add("flash");
    existing.replaceWith(fresh);
  }
  soon(); // counts, sources, and items new to this page
}

function connect() {
  if (state.source) state.source.close();
  const source = new EventSource(`/api/v1/events/stream?${filters()}`);
  state.source = source;
  const live = document.getElementById("live");
  source.onopen = () => {
    live.textContent = "live";
    live.className = "live on";
  };
  source.onerror = () => {
    live.textContent = "reconnecting";
    live.className = "live off";
  };
  source.addEventListener("change", onChange);
  source.addEventListener("reset", () => reload());
}

function start() {
  for (const field of document.querySelectorAll("#filters select, #filters input")) {
    field.addEventListener(field.tagName === "INPUT" ? "input" : "change", () => {
      state.cursors = [null];
      state.page = 0;
      reload();
      connect();
    });
  }
  document.getElementById("filters").addEventListener("submit", (e) => e.preventDefault());
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
  setInterval(() => {
    for (const cell of document.querySelectorAll("td[data-time]")) {
      cell.textContent = ago(cell.dataset.time);
    }
  }, 10000);
  reload();
  connect();
}

start();
