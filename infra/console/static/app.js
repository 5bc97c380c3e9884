// The audit console: every figure comes from the public API, asked with the
// admin's bearer token. No inline code (the page's Content Security Policy
// forbids it); text goes into the page with textContent, never as HTML.

const $ = (id) => document.getElementById(id);

// This module is served at <api>/console/app.js: the API is its
// grandparent, whatever the stage or base path in front of it.
const apiBase = new URL("../", import.meta.url);

const STATE_FIELDS = ["name", "email", "sub", "status", "suspendReason", "deletedBy", "deleteReason", "deletedAt", "createdAt"];
const MAX_HISTORY_PAGES = 10;   // 1,000 events a user
const MAX_STATES = 200;         // versions whose state the timeline diffs
const MAX_ACTIVITY_PAGES = 10;
const MAX_FEED_PAGES = 10;      // the feed scan for a deleted user's address

const view = {
  token: "",
  id: "",
  events: [],                   // the user's history, in version order
  states: new Map(),            // version -> state answer (GET /users/{id}/state?version=)
};

// ---------------------------------------------------------------- the token

function readFragment() {
  const params = new URLSearchParams(location.hash.slice(1));
  if (params.has("token")) {
    sessionStorage.setItem("chronicle.token", params.get("token"));
  }
  if (params.has("trace")) {
    localStorage.setItem("chronicle.traceUrl", params.get("trace"));
  }
  // The token leaves the address bar at once: not in the history, not in a
  // screenshot, not in a link copied from here.
  if (params.has("token") || params.has("trace")) {
    params.delete("token");
    params.delete("trace");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
  view.token = sessionStorage.getItem("chronicle.token") || "";
  return params.get("user") || "";
}

function subjectOf(token) {
  try {
    const part = token.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    const claims = JSON.parse(atob(part + "=".repeat((4 - (part.length % 4)) % 4)));
    return { sub: String(claims.sub || "?"), exp: claims.exp ? new Date(claims.exp * 1000) : null };
  } catch {
    return null;
  }
}

function showWho() {
  const c = view.token ? subjectOf(view.token) : null;
  $("who").textContent = !view.token ? "Not signed in: paste an admin token below."
    : c ? `Signed in as ${c.sub}` + (c.exp ? `, token valid until ${fmtTime(c.exp.toISOString())}` : "") + "."
    : "A token is set (not a JWT this page can read).";
}

// ---------------------------------------------------------------- the API

class APIError extends Error {
  constructor(status, problem) {
    super(problem && (problem.detail || problem.title) ? `${problem.title || "Error"} (${status}): ${problem.detail || ""}` : `HTTP ${status}`);
    this.status = status;
    this.problem = problem;
  }
}

async function api(path, { method = "GET", body, ok = [200] } = {}) {
  if (!view.token) throw new APIError(401, { title: "No token", detail: "paste an admin token first" });
  const headers = { Authorization: "Bearer " + view.token, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  const resp = await fetch(new URL(path, apiBase), { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await resp.json(); } catch { data = null; }
  if (!ok.includes(resp.status)) throw new APIError(resp.status, data);
  return { status: resp.status, data, requestId: resp.headers.get("X-Request-Id") };
}

const enc = encodeURIComponent;

// ---------------------------------------------------------------- helpers

function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c);
  return e;
}

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

function say(msg, isError = false) {
  const s = $("status");
  s.textContent = msg;
  s.className = isError ? "error" : "";
}

function fail(err) {
  const hint = err.status === 401 ? " The token was refused: paste a fresh one."
    : err.status === 403 ? " This needs an admin token." : "";
  say((err.message || String(err)) + hint, true);
}

function show(id, on = true) { $(id).hidden = !on; }

// ---------------------------------------------------------------- traces

function defaultTraceURL() {
  const h = location.hostname;
  if (h === "127.0.0.1" || h === "localhost" || h === "[::1]") {
    return apiBase.href + "_local/traces/{requestId}"; // the runner's own spans (not new URL: it would escape the braces)
  }
  const m = h.match(/\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/);
  if (m) { // CloudWatch's trace search, on the correlation id annotation
    const r = m[1];
    return `https://${r}.console.aws.amazon.com/cloudwatch/home?region=${r}#xray:traces/query?~(query~(expression~'annotation.correlation_id*20*3d*20*22{requestId}*22))`;
  }
  return "";
}

function traceURL(requestId) {
  const tpl = localStorage.getItem("chronicle.traceUrl") || defaultTraceURL();
  return tpl && requestId ? tpl.replaceAll("{requestId}", enc(requestId)) : "";
}

// ---------------------------------------------------------------- find

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function find(q) {
  q = q.trim();
  if (UUID.test(q)) return openUser(q.toLowerCase());
  if (!q.includes("@")) return say("Type a user id (a UUID) or an email address.", true);
  say(`Looking up ${q}…`);
  try {
    const r = await api(`users?email=${enc(q)}`, { ok: [200, 404, 410] });
    if (r.status !== 404) return openUser(r.data.id);
  } catch (e) { return fail(e); }
  // The lookup knows live users only: a deleted user's address is found in
  // the feed of every event (up to ten seconds behind now).
  say(`No live user holds ${q}; looking through the event feed for past holders…`);
  const want = q.toLowerCase();
  let cursor = "", found = "";
  for (let page = 0; page < MAX_FEED_PAGES && !found; page++) {
    let r;
    try { r = await api(`events?limit=1000${cursor ? "&after=" + enc(cursor) : ""}`); } catch (e) { return fail(e); }
    for (const ev of r.data.events) {
      if (ev.data && typeof ev.data.email === "string" && ev.data.email.toLowerCase() === want) found = ev.aggregateId;
    }
    if (!r.data.events.length || r.data.nextCursor === cursor) break;
    cursor = r.data.nextCursor;
  }
  if (found) return openUser(found);
  say(`No user ever held ${q} in the first ${MAX_FEED_PAGES * 1000} events of the feed.`, true);
}

// ---------------------------------------------------------------- a user

async function openUser(id) {
  view.id = id;
  view.events = [];
  view.states = new Map();
  say(`Loading user ${id}…`);
  history.replaceState(null, "", location.pathname + location.search + "#user=" + id);
  try {
    const now = await api(`users/${enc(id)}`, { ok: [200, 410] });
    renderNow(now.status, now.data);
    let cursor = "";
    for (let page = 0; page < MAX_HISTORY_PAGES; page++) {
      const r = await api(`users/${enc(id)}/history?limit=100${cursor ? "&cursor=" + enc(cursor) : ""}`);
      view.events.push(...r.data.events);
      if (!r.data.nextCursor) break;
      cursor = r.data.nextCursor;
    }
    await loadStates(view.events.slice(-MAX_STATES).map((e) => e.version));
  } catch (e) {
    return fail(e);
  }
  renderTimeline();
  setupTravel();
  say(`User ${id}: ${view.events.length} event${view.events.length === 1 ? "" : "s"}.`);
}

// loadStates fetches the state at each version, four at a time.
async function loadStates(versions) {
  const todo = versions.filter((v) => !view.states.has(v));
  const worker = async () => {
    for (let v = todo.shift(); v !== undefined; v = todo.shift()) {
      const r = await api(`users/${enc(view.id)}/state?version=${v}`);
      view.states.set(v, r.data);
    }
  };
  await Promise.all([worker(), worker(), worker(), worker()]);
}

function renderNow(status, u) {
  const dl = $("user-now");
  dl.replaceChildren();
  const add = (k, v) => { if (v !== undefined && v !== null && v !== "") dl.append(el("dt", { text: k }), el("dd", { text: String(v) })); };
  add("id", u.id);
  if (status === 410) {
    add("status", "deleted");
    add("deleted by", u.deletedBy);
    add("deleted at", fmtTime(u.deletedAt));
    add("reason", u.reason || "(none given)");
  } else {
    add("name", u.name);
    add("email", u.email);
    add("status", u.status);
    add("sub", u.sub);
    add("created", fmtTime(u.createdAt));
  }
  add("version", u.version);
  $("user-h").textContent = status === 410 ? "User (deleted)" : "User";
  show("user");
}

function diffRows(before, after) {
  const rows = [];
  for (const f of STATE_FIELDS) {
    const b = before ? before[f] : undefined, a = after ? after[f] : undefined;
    if ((b ?? "") !== (a ?? "")) rows.push([f, b ?? "", a ?? ""]);
  }
  return rows;
}

function diffTable(rows, caption) {
  if (!rows.length) return el("p", { class: "muted", text: "No field of the state changed." });
  const t = el("table", { class: "diff" },
    el("caption", { class: "muted", text: caption }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "field" }), el("th", { scope: "col", text: "before" }), el("th", { scope: "col", text: "after" }))));
  const tb = el("tbody");
  for (const [f, b, a] of rows) {
    tb.append(el("tr", {}, el("th", { scope: "row", text: f }),
      el("td", { class: "before", text: f.endsWith("At") ? fmtTime(b) : String(b) }),
      el("td", { class: "after", text: f.endsWith("At") ? fmtTime(a) : String(a) })));
  }
  t.append(tb);
  return t;
}

function eventItem(ev, withUser) {
  const li = el("li", { id: withUser ? undefined : `ev-${ev.version}`, "data-version": ev.version, class: ev.type.startsWith("user.deleted") ? "deleted" : "" });
  const day = (ev.occurredAt || "").slice(0, 10);
  const actor = ev.actor
    ? el("button", { type: "button", class: "link actor", "aria-label": `What else did ${ev.actor} do on ${day}?`, text: ev.actor, onclick: () => openActivity(ev.actor, day) })
    : el("span", { text: "(no actor)" });
  li.append(el("h3", {},
    el("span", { class: "type", text: withUser ? ev.type : `v${ev.version} ${ev.type}` })));
  li.append(el("div", { class: "meta" },
    el("time", { datetime: ev.occurredAt, text: fmtTime(ev.occurredAt) }),
    el("span", {}, "by ", actor)));
  li.append(el("p", { class: "reason" }, el("strong", { text: "Why: " }), ev.reason ? ev.reason : el("span", { class: "muted", text: "no reason given" })));
  if (withUser) {
    li.append(el("p", {}, "user ", el("button", { type: "button", class: "link mono", text: ev.aggregateId, onclick: () => openUser(ev.aggregateId) }), ` v${ev.version}`));
  } else {
    const prev = view.states.get(ev.version - 1), cur = view.states.get(ev.version);
    if (cur) li.append(diffTable(diffRows(ev.version > 1 ? prev && prev.state : null, cur.state), `What v${ev.version} changed`));
    else li.append(el("pre", { class: "mono", text: JSON.stringify(ev.data) }));
  }
  const trace = traceURL(ev.correlationId);
  li.append(el("p", { class: "meta" },
    el("span", {}, "correlation id ", el("code", { text: ev.correlationId || "(none)" })),
    trace ? el("a", { href: trace, target: "_blank", rel: "noopener noreferrer", text: "trace" }) : null,
    withUser ? null : el("button", { type: "button", class: "link", text: `state at v${ev.version}`, onclick: () => travelTo(ev.version, true) })));
  return li;
}

function renderTimeline() {
  const ol = $("events");
  ol.replaceChildren(...view.events.map((ev) => eventItem(ev, false)));
  $("timeline-h").textContent = `Timeline (${view.events.length} event${view.events.length === 1 ? "" : "s"})`;
  show("timeline");
}

// ---------------------------------------------------------------- time travel

function setupTravel() {
  const last = view.events.length ? view.events[view.events.length - 1].version : 1;
  const r = $("version");
  r.min = view.events.length ? view.events[0].version : 1;
  r.max = last;
  r.value = last;
  show("travel", view.events.length > 0);
  show("whatif", view.events.length > 0);
  $("whatif-out").replaceChildren();
  travelTo(last, false);
}

let travelSeq = 0;
async function travelTo(v, focus) {
  v = Number(v);
  const r = $("version");
  r.value = v;
  if (focus) r.focus();
  const seq = ++travelSeq;
  const ev = view.events.find((e) => e.version === v);
  $("version-out").textContent = `v${v} of ${r.max}` + (ev ? ` — ${ev.type}, ${fmtTime(ev.occurredAt)}` : "");
  r.setAttribute("aria-valuetext", $("version-out").textContent);
  try {
    await loadStates([v, v - 1].filter((x) => x >= 1));
  } catch (e) { return fail(e); }
  if (seq !== travelSeq) return; // a later position won
  const cur = view.states.get(v), prev = view.states.get(v - 1);
  const changed = new Set(diffRows(prev && prev.state, cur.state).map((row) => row[0]));
  const dl = $("state");
  dl.replaceChildren();
  dl.append(el("dt", { text: "version" }), el("dd", { text: String(cur.version) }));
  dl.append(el("dt", { text: "as of" }), el("dd", { text: fmtTime(cur.asOf) }));
  for (const f of STATE_FIELDS) {
    const val = cur.state[f];
    if (val === undefined || val === "") continue;
    dl.append(el("dt", { text: f }), el("dd", { class: changed.has(f) ? "changed" : "", text: f.endsWith("At") ? fmtTime(val) : String(val) }));
  }
  for (const li of $("events").children) li.classList.toggle("selected", Number(li.dataset.version) === v);
  $("whatif-at").textContent = ev ? `At v${v} (${fmtTime(ev.occurredAt)}), just after ${ev.type}: the slider above chooses the moment.` : "";
}

// ---------------------------------------------------------------- what if

const WHATIF_FIELD = { rename: ["name", "New name"], "change-email": ["email", "New email"], suspend: ["reason", "Reason"], reactivate: ["reason", "Reason"], delete: ["reason", "Reason"] };

function whatIfFieldChanged() {
  const [field, label] = WHATIF_FIELD[$("wi-command").value];
  $("wi-value-label").textContent = label;
  const reasonOnly = field === "reason";
  $("wi-reason").disabled = reasonOnly;
  $("wi-reason").previousElementSibling.hidden = reasonOnly;
  $("wi-reason").hidden = reasonOnly;
}

async function askWhatIf() {
  const v = Number($("version").value);
  const ev = view.events.find((e) => e.version === v);
  const command = $("wi-command").value;
  const [field] = WHATIF_FIELD[command];
  const body = { command, at: ev ? ev.occurredAt : undefined };
  const value = $("wi-value").value;
  if (value !== "") body[field] = value;
  if (field !== "reason" && $("wi-reason").value !== "") body.reason = $("wi-reason").value;
  const out = $("whatif-out");
  out.replaceChildren(el("p", { class: "muted", text: "Asking…" }));
  let r;
  try {
    r = await api(`users/${enc(view.id)}/what-if`, { method: "POST", body });
  } catch (e) {
    const fields = e.problem && e.problem.errors ? e.problem.errors.map((x) => `${x.field}: ${x.message}`).join("; ") : "";
    out.replaceChildren(el("p", { class: "error", text: e.message + (fields ? ` (${fields})` : "") }));
    return;
  }
  const a = r.data;
  const parts = [el("h3", { text: `What if ${a.command} at v${a.before.version}?` })];
  if (a.rejected) {
    parts.push(el("p", { class: "rejected" }, el("strong", { text: "Rejected: " }), a.rejected));
  } else if (!a.events.length) {
    parts.push(el("p", { text: "No event: the command changes nothing." }));
  } else {
    parts.push(el("p", { text: `Would append ${a.events.map((e) => `v${e.version} ${e.type}`).join(", ")}, as ${a.events[0].actor}.` }));
    parts.push(diffTable(diffRows(a.before.state, a.after.state), `v${a.before.version} → v${a.after.version}, hypothetically`));
  }
  parts.push(el("p", { class: "muted", text: "Nothing was written." }));
  out.replaceChildren(...parts);
}

// ---------------------------------------------------------------- activity

async function openActivity(sub, day) {
  const list = $("activity-list");
  $("activity-h").textContent = `What else did ${sub} do on ${day}?`;
  list.replaceChildren(el("li", { class: "muted", text: "Loading…" }));
  show("activity");
  $("activity-h").scrollIntoView();
  const found = [];
  let cursor = "";
  try {
    for (let page = 0; page < MAX_ACTIVITY_PAGES; page++) {
      const r = await api(`actors/${enc(sub)}/activity?limit=100${cursor ? "&cursor=" + enc(cursor) : ""}`);
      const evs = r.data.events; // newest first
      found.push(...evs.filter((e) => e.occurredAt.slice(0, 10) === day));
      if (!r.data.nextCursor || (evs.length && evs[evs.length - 1].occurredAt.slice(0, 10) < day)) break;
      cursor = r.data.nextCursor;
    }
  } catch (e) {
    list.replaceChildren(el("li", { class: "error", text: e.message }));
    return;
  }
  list.replaceChildren(...(found.length ? found.map((e) => eventItem(e, true))
    : [el("li", { class: "muted", text: `Nothing recorded for ${sub} on ${day} yet (the activity is a projection: it may be a moment behind).` })]));
  $("activity-h").focus?.();
}

// ---------------------------------------------------------------- projections

async function showOps() {
  const out = $("ops-out");
  out.replaceChildren(el("p", { class: "muted", text: "Asking…" }));
  let r;
  try { r = await api("ops/projections", { ok: [200, 503] }); } catch (e) {
    out.replaceChildren(el("p", { class: "error", text: e.message }));
    return;
  }
  const p = (r.data && r.data.projections) || {};
  const cols = [["lag (s)", (x) => x.lastEventAgeSeconds == null ? "–" : x.lastEventAgeSeconds.toFixed(1)],
    ["last event", (x) => fmtTime(x.lastEventAt) || "–"], ["waiting", (x) => x.queueDepth ?? "–"],
    ["in flight", (x) => x.inFlight ?? "–"], ["dead letters", (x) => x.deadLetterDepth ?? "–"]];
  const t = el("table", { class: "ops" }, el("caption", { class: "muted", text: `As of ${fmtTime(new Date().toISOString())}` }),
    el("thead", {}, el("tr", {}, el("th", { scope: "col", text: "projection" }), ...cols.map(([h]) => el("th", { scope: "col", text: h })))));
  const tb = el("tbody");
  for (const name of Object.keys(p).sort()) {
    const x = p[name];
    tb.append(el("tr", {}, el("th", { scope: "row", text: name }),
      ...cols.map(([h, f]) => el("td", { class: h === "dead letters" && x.deadLetterDepth > 0 ? "bad" : "", text: String(f(x)) }))));
  }
  t.append(tb);
  const parts = [t];
  if (r.data && r.data.errors) parts.push(el("p", { class: "error", text: r.data.errors.join("; ") }));
  parts.push(el("p", { class: "muted", text: "Dead letters are inspected and redriven with the operator CLI: chronicle dlq." }));
  out.replaceChildren(...parts);
}

// ---------------------------------------------------------------- wiring

function init() {
  const user = readFragment();
  showWho();
  $("trace-url").value = localStorage.getItem("chronicle.traceUrl") || defaultTraceURL();
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    view.token = $("token").value.trim();
    sessionStorage.setItem("chronicle.token", view.token);
    $("token").value = "";
    showWho();
    $("q").focus();
  });
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem("chronicle.token");
    view.token = "";
    showWho();
  });
  $("find-form").addEventListener("submit", (e) => { e.preventDefault(); find($("q").value); });
  let pending = 0;
  $("version").addEventListener("input", (e) => { // dragging: the last position wins
    clearTimeout(pending);
    const v = e.target.value;
    pending = setTimeout(() => travelTo(v, false), 60);
  });
  $("wi-command").addEventListener("change", whatIfFieldChanged);
  whatIfFieldChanged();
  $("whatif-form").addEventListener("submit", (e) => { e.preventDefault(); askWhatIf(); });
  $("ops-refresh").addEventListener("click", showOps);
  $("settings-form").addEventListener("submit", (e) => {
    e.preventDefault();
    localStorage.setItem("chronicle.traceUrl", $("trace-url").value.trim());
    if (view.events.length) renderTimeline();
  });
  $("trace-reset").addEventListener("click", () => {
    localStorage.removeItem("chronicle.traceUrl");
    $("trace-url").value = defaultTraceURL();
    if (view.events.length) renderTimeline();
  });
  $("activity-h").tabIndex = -1;
  if (user) { $("q").value = user; openUser(user); }
  else if (view.token) $("q").focus(); else $("token").focus();
}

init();
