// fundbot dashboard: one page over the daemon's operator API (/api/v1, bearer token). No build step, no
// dependencies. Live: a server-sent event stream read through fetch (EventSource cannot send the bearer
// header) triggers refreshes; a slow poll is the fallback. Ledger text is always set as textContent.
"use strict";

const API = "/api/v1";
const TOKEN_KEY = "fundbot.api_token";
const state = { token: null, status: null, window: "7d", streaming: false, timers: {}, pending: {} };
const $ = (id) => document.getElementById(id);

// -- token -----------------------------------------------------------------------------------------------
function loadToken() {
  const hash = new URLSearchParams(location.hash.slice(1));
  if (hash.get("token")) {  // a link printed by `fundbot demo`: the fragment never reaches the server
    sessionStorage.setItem(TOKEN_KEY, hash.get("token"));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem(TOKEN_KEY) || localStorage.getItem(TOKEN_KEY);
}

function askToken(message) {
  state.token = null;
  sessionStorage.removeItem(TOKEN_KEY);
  localStorage.removeItem(TOKEN_KEY);
  $("login-error").hidden = !message;
  $("login-error").textContent = message || "";
  $("login").hidden = false;
  $("login-token").focus();
}

class Unauthorized extends Error {}

async function api(path, options = {}) {
  if (!state.token) throw new Unauthorized("no token");
  const headers = { Authorization: "Bearer " + state.token, ...(options.headers || {}) };
  const res = await fetch(API + path, { ...options, headers, cache: "no-store" });
  if (res.status === 401) {
    askToken("the daemon refused this token");
    throw new Unauthorized("refused");
  }
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.error || "HTTP " + res.status);
  return body;
}

// -- formatting ------------------------------------------------------------------------------------------
const num = (v) => (v === null || v === undefined ? null : Number(v));
function fmt(v, places = 2) {
  const n = num(v);
  return n === null || !isFinite(n) ? "-" : n.toLocaleString("en-US", { minimumFractionDigits: places, maximumFractionDigits: places });
}
function qty(v) {
  const n = num(v);
  return n === null ? "-" : String(v).replace(/(\.\d*?)0+$/, "$1").replace(/\.$/, "");
}
function pct(v, places = 2) {
  const n = num(v);
  return n === null ? "-" : (n * 100).toFixed(places) + "%";
}
function iso(ms) {
  return ms === null || ms === undefined ? "-" : new Date(ms).toISOString().replace(".000Z", "Z").replace("T", " ");
}
function age(ms) {
  if (ms === null || ms === undefined) return "-";
  const s = Math.round(Math.abs(ms) / 1000);
  const sign = ms < 0 ? "-" : "";
  if (s < 60) return sign + s + "s";
  if (s < 3600) return sign + Math.floor(s / 60) + "m" + String(s % 60).padStart(2, "0") + "s";
  if (s < 86400) return sign + Math.floor(s / 3600) + "h" + String(Math.floor((s % 3600) / 60)).padStart(2, "0") + "m";
  return sign + Math.floor(s / 86400) + "d" + String(Math.floor((s % 86400) / 3600)).padStart(2, "0") + "h";
}
function signClass(v) {
  const n = num(v);
  return n === null || n === 0 ? "" : n > 0 ? "pos" : "neg";
}
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c === null || c === undefined ? "" : String(c)));
  return node;
}
function td(text, cls) {
  return el("td", cls ? { class: cls } : {}, text);
}

function toast(message, bad = false) {
  const t = $("toast");
  t.textContent = message;
  t.className = "toast" + (bad ? " bad" : "");
  t.hidden = false;
  clearTimeout(state.timers.toast);
  state.timers.toast = setTimeout(() => (t.hidden = true), bad ? 9000 : 6000);
}

// -- status ----------------------------------------------------------------------------------------------
async function refreshStatus() {
  const st = await api("/status");
  state.status = st;
  renderHeader(st);
  renderControls(st.controls);
  renderPairs(st);
  renderSettlements(st);
}

function renderHeader(st) {
  $("mode").textContent = st.mode + (st.account ? " · " + st.account : "");
  const h = $("health");
  h.textContent = st.health.status;
  h.className = "tag " + (st.health.status === "ok" ? "ok" : "bad");
  const failing = Object.entries(st.health.checks).filter(([, c]) => !c.ok).map(([n]) => n);
  h.title = failing.length ? "failing: " + failing.join(", ") : "scheduler, venue and funding scan are fresh";
  $("clock").textContent = "as of " + iso(st.as_of_ms);
}

function renderControls(c) {
  $("close-only-state").textContent = c.close_only ? "on" : "off";
  $("close-only-state").className = c.close_only ? "neg" : "";
  $("close-only-toggle").textContent = c.close_only ? "turn off" : "turn on";
  $("capital-limit-state").textContent = c.capital_limit ? fmt(c.capital_limit, 2) + " USDT" : "not set (the setting applies)";
  $("capital-limit-clear").disabled = !c.capital_limit;
  const paused = $("paused-list");
  paused.replaceChildren();
  if (!c.paused.length) paused.append("none");
  for (const sym of c.paused) {
    const b = el("button", { type: "button", class: "resume", dataset: { symbol: sym }, title: "allow entries on " + sym + " again" }, sym + " · resume");
    b.addEventListener("click", () => confirmResume(sym));
    paused.append(b, " ");
  }
  const exits = c.active.filter((r) => r.kind === "exit");
  $("exit-list").textContent = exits.length ? exits.map((r) => r.symbol + " #" + r.pair_id + (r.reason ? " (" + r.reason + ")" : "")).join(", ") : "none";
}

function renderPairs(st) {
  const body = $("pairs").querySelector("tbody");
  body.replaceChildren();
  $("no-pairs").hidden = st.pairs.length > 0;
  for (const p of st.pairs) {
    const row = el("tr", { dataset: { symbol: p.symbol, pairId: String(p.id), state: p.state } });
    if (p.paused) row.classList.add("paused");
    if (p.exit_requested) row.classList.add("exiting");
    const next = p.next_funding_ms === null ? "-" : iso(p.next_funding_ms) + " at " + pct(p.next_funding_rate, 4);
    const liq = p.liquidation_price === null ? "-" : fmt(p.liquidation_price, 2) + " (" + pct(p.liquidation_distance, 1) + " away)";
    row.append(
      td(p.symbol),
      td(p.exit_requested ? p.state + " · exit requested" : p.state),
      td(qty(p.spot_qty)),
      td(qty(p.perp_qty)),
      td(pct(p.hedge_drift_pct, 2), num(p.hedge_drift) === 0 ? "" : "neg"),
      td(fmt(p.notional, 2)),
      td(pct(p.entry_basis, 3)),
      td(fmt(p.funding_earned, 4), signClass(p.funding_earned)),
      td(next),
      td(liq),
    );
    const actions = el("td", { class: "actions" });
    const exit = el("button", { type: "button", class: "exit danger", dataset: { symbol: p.symbol }, title: "close both legs of " + p.symbol }, "exit");
    exit.disabled = p.exit_requested;
    exit.addEventListener("click", () => confirmExit(p));
    const pause = el("button", { type: "button", class: p.paused ? "resume" : "pause", dataset: { symbol: p.symbol } }, p.paused ? "resume" : "pause");
    pause.addEventListener("click", () => (p.paused ? confirmResume(p.symbol) : confirmPause(p.symbol)));
    actions.append(pause, exit);
    row.append(actions);
    body.append(row);
  }
  const c = st.collateral;
  $("collateral-ratio").textContent = c.ratio === null ? "n/a (no short)" : fmt(c.ratio, 3);
  const band = c.band;
  const top = Math.max(num(band.high) * 1.4, num(c.ratio) || 0);
  const x = (v) => Math.min(100, (num(v) / top) * 100) + "%";
  const ok = $("band-ok");
  ok.style.left = x(band.low);
  ok.style.width = (num(band.high) - num(band.low)) / top * 100 + "%";
  const m = $("band-marker");
  m.style.display = c.ratio === null ? "none" : "block";
  if (c.ratio !== null) m.style.left = x(c.ratio);
  $("band-text").textContent = "band " + band.low + " / " + band.target + " / " + band.high + " · margin " + fmt(c.margin_balance) + " / short " + fmt(c.short_notional);
  $("wallets").textContent = st.wallets.map((w) => w.wallet + ": " + Object.entries(w.assets).filter(([, b]) => num(b.total) !== 0).map(([a, b]) => a + " " + qty(b.total)).join(", ")).join("  ·  ");
}

function renderSettlements(st) {
  const body = $("settlements").querySelector("tbody");
  body.replaceChildren();
  for (const s of st.settlements) {
    const row = el("tr", { dataset: { symbol: s.symbol } });
    row.append(
      td(s.symbol + (s.held ? " ●" : "")),
      td(s.next_funding_ms === null ? "-" : iso(s.next_funding_ms)),
      td(s.next_funding_ms === null ? "-" : age(s.next_funding_ms - st.as_of_ms)),
      td(pct(s.predicted_rate, 4), signClass(s.predicted_rate)),
    );
    body.append(row);
  }
}

// -- equity ----------------------------------------------------------------------------------------------
async function refreshEquity() {
  const since = state.window ? "?since=" + state.window : "";
  const [eq, pnl] = await Promise.all([api("/equity" + since + (since ? "&" : "?") + "points=300"), api("/pnl" + since)]);
  const pts = eq.points;
  $("equity-now").textContent = pts.length ? fmt(pts[pts.length - 1].equity, 2) + " USDT" : "no balance snapshot yet";
  const xs = pts.map((p) => p.ts_ms);
  drawChart($("equity-chart"), xs, [{ cls: "equity", values: pts.map((p) => num(p.equity)) }]);
  drawChart($("pnl-chart"), xs, [
    { cls: "pnl", values: pts.map((p) => num(p.pnl)) },
    { cls: "funding", values: pts.map((p) => num(p.funding)) },
    { cls: "fees", values: pts.map((p) => num(p.fees)) },
  ]);
  const t = pnl.total;
  $("pnl-summary").textContent =
    "attribution " + (state.window ? "over " + state.window : "since the ledger began") + ": funding " + fmt(t.funding, 2) +
    ", price " + fmt(t.price, 2) + ", basis " + fmt(t.basis, 2) + ", fees " + fmt(t.fees, 2) + ", net " + fmt(t.net, 2) +
    " USDT (unexplained " + fmt(pnl.residual, 2) + ")";
}

function drawChart(svg, xs, series) {
  // The drawing is sized to the element, so text is never stretched.
  const W = Math.max(svg.clientWidth, 300), H = Math.max(svg.clientHeight, 100), L = 70, R = 10, T = 8, B = 18;
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  svg.replaceChildren();
  const ns = "http://www.w3.org/2000/svg";
  const make = (tag, attrs) => {
    const n = document.createElementNS(ns, tag);
    for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
    return n;
  };
  const values = series.flatMap((s) => s.values).filter((v) => v !== null && isFinite(v));
  if (xs.length < 1 || !values.length) {
    const t = make("text", { x: W / 2, y: H / 2, "text-anchor": "middle" });
    t.textContent = "no balance snapshot in the window yet";
    svg.append(t);
    return;
  }
  let lo = Math.min(...values), hi = Math.max(...values);
  if (hi - lo < 1e-9) { lo -= 1; hi += 1; }
  const x0 = xs[0], x1 = xs[xs.length - 1] === x0 ? x0 + 1 : xs[xs.length - 1];
  const px = (x) => L + ((x - x0) / (x1 - x0)) * (W - L - R);
  const py = (y) => T + (1 - (y - lo) / (hi - lo)) * (H - T - B);
  for (const f of [0, 0.5, 1]) {
    const y = lo + f * (hi - lo);
    svg.append(make("line", { x1: L, x2: W - R, y1: py(y), y2: py(y), class: "grid" }));
    const label = make("text", { x: L - 6, y: py(y) + 4, "text-anchor": "end" });
    label.textContent = fmt(y, Math.abs(hi - lo) < 10 ? 2 : 0);
    svg.append(label);
  }
  for (const [x, anchor] of [[x0, "start"], [x1, "end"]]) {
    const t = make("text", { x: px(x), y: H - 4, "text-anchor": anchor });
    t.textContent = iso(x).slice(0, 16);
    svg.append(t);
  }
  for (const s of series) {
    const d = s.values.map((v, i) => (i ? "L" : "M") + px(xs[i]).toFixed(1) + "," + py(v).toFixed(1)).join("");
    svg.append(make("path", { d, class: s.cls }));
  }
}

// -- events ----------------------------------------------------------------------------------------------
function eventItem(e) {
  return el("li", { class: e.kind, dataset: { id: String(e.id) } },
    el("span", { class: "when" }, iso(e.ts_ms)), el("span", { class: "sym" }, e.symbol || "-"), el("span", { class: "text" }, e.summary));
}

function fill(list, events) {
  list.replaceChildren(...events.map(eventItem));
  if (!events.length) list.append(el("li", { class: "muted" }, "none yet"));
}

async function refreshEvents() {
  const [decisions, alerts] = await Promise.all([api("/events?kind=decision&limit=60"), api("/alerts?limit=40")]);
  fill($("decisions"), decisions.events);
  fill($("alerts"), alerts.events);
}

// -- controls --------------------------------------------------------------------------------------------
let pendingAction = null;

function openConfirm({ title, text, action, reason = true, pauseOption = false, value = false }) {
  $("confirm-title").textContent = title;
  $("confirm-text").textContent = text;
  $("confirm-reason-row").hidden = !reason;
  $("confirm-reason").value = "";
  $("confirm-pause-row").hidden = !pauseOption;
  $("confirm-pause").checked = false;
  $("confirm-value-row").hidden = !value;
  $("confirm-value").value = "";
  $("confirm-error").hidden = true;
  pendingAction = action;
  $("confirm").hidden = false;
  (value ? $("confirm-value") : reason ? $("confirm-reason") : $("confirm-ok")).focus();
}

function closeConfirm() {
  $("confirm").hidden = true;
  pendingAction = null;
}

async function post(path, body) {
  return api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

function reasonOf() {
  const r = $("confirm-reason").value.trim();
  return r ? { reason: r } : {};
}

function confirmExit(p) {
  openConfirm({
    title: "Exit " + p.symbol + "?",
    text: "The daemon closes both legs of pair #" + p.id + " (spot " + qty(p.spot_qty) + ", short " + qty(p.perp_qty) + ") at once, at market.",
    pauseOption: true,
    action: () => post("/controls/exit", { symbol: p.symbol, pause: $("confirm-pause").checked, ...reasonOf() }),
  });
}
function confirmPause(sym) {
  openConfirm({ title: "Pause " + sym + "?", text: "No entries or increases on " + sym + "; a held pair is kept.", action: () => post("/controls/pause", { symbol: sym, ...reasonOf() }) });
}
function confirmResume(sym) {
  openConfirm({ title: "Resume " + sym + "?", text: "The strategy may enter " + sym + " again.", reason: false, action: () => post("/controls/resume", { symbol: sym }) });
}
function confirmCloseOnly() {
  const on = !(state.status && state.status.controls.close_only);
  openConfirm({
    title: "Close-only " + (on ? "on" : "off") + "?",
    text: on ? "No new pairs; the held ones are wound down (not just before a paying settlement)." : "Entries allowed again.",
    reason: on,
    action: () => post("/controls/close-only", { on, ...(on ? reasonOf() : {}) }),
  });
}
function confirmCapital(clear) {
  openConfirm({
    title: clear ? "Clear the capital limit?" : "Set the capital limit",
    text: clear ? "The setting engine.capital_limit applies again." : "The strategy allocates at most this much USDT of equity.",
    reason: false,
    value: !clear,
    action: () => {
      if (clear) return post("/controls/capital-limit", { value: null });
      const v = Number($("confirm-value").value);
      if (!isFinite(v) || v < 1) throw new Error("enter an amount of at least 1 USDT");
      return post("/controls/capital-limit", { value: v });
    },
  });
}

async function runConfirmed(ev) {
  ev.preventDefault();
  if (!pendingAction) return;
  const ok = $("confirm-ok");
  ok.disabled = true;
  try {
    const res = await pendingAction();
    closeConfirm();
    toast(res.message);
    renderControls(res.controls);
    schedule("status", 300);
  } catch (err) {
    if (!(err instanceof Unauthorized)) {
      $("confirm-error").textContent = err.message;
      $("confirm-error").hidden = false;
    }
  } finally {
    ok.disabled = false;
  }
}

// -- live ------------------------------------------------------------------------------------------------
const refreshers = { status: refreshStatus, equity: refreshEquity, events: refreshEvents };

function schedule(name, delayMs) {
  if (state.pending[name]) return;
  state.pending[name] = setTimeout(async () => {
    state.pending[name] = null;
    try {
      await refreshers[name]();
    } catch (err) {
      if (!(err instanceof Unauthorized)) console.warn(name, err);
    }
  }, delayMs);
}

function setLive(on, text) {
  state.streaming = on;
  const t = $("live");
  t.textContent = text;
  t.className = "tag " + (on ? "ok" : "warn");
}

async function follow() {
  let lastId = null;
  for (let backoff = 1000; state.token; backoff = Math.min(backoff * 2, 30000)) {
    try {
      const headers = { Authorization: "Bearer " + state.token, Accept: "text/event-stream" };
      if (lastId) headers["Last-Event-ID"] = lastId;
      const res = await fetch(API + "/stream", { headers, cache: "no-store" });
      if (res.status === 401) { askToken("the daemon refused this token"); return; }
      if (!res.ok || !res.body) throw new Error("HTTP " + res.status);
      setLive(true, "live");
      backoff = 1000;
      const reader = res.body.getReader();
      const decoder = new TextDecoder();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut;
        while ((cut = buffer.indexOf("\n\n")) >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const fields = {};
          for (const line of block.split("\n")) {
            const i = line.indexOf(":");
            if (i > 0) fields[line.slice(0, i)] = (fields[line.slice(0, i)] || "") + line.slice(i + 1).trimStart();
          }
          if (fields.id) lastId = fields.id;
          if (fields.event === "ledger" && fields.data) onLedger(JSON.parse(fields.data));
        }
      }
    } catch (err) {
      console.warn("stream", err);
    }
    setLive(false, "reconnecting");
    await new Promise((r) => setTimeout(r, backoff));
  }
}

function onLedger(batch) {
  const kinds = new Set(batch.events.map((e) => e.kind));
  schedule("status", 500);
  if (kinds.has("decision") || kinds.has("alert")) schedule("events", 300);
  if (kinds.has("funding") || kinds.has("fill") || kinds.has("info")) schedule("equity", 2000);
}

function startPolling() {
  clearInterval(state.timers.poll);
  // The stream triggers refreshes as the ledger moves; this slower poll keeps ages and health current
  // and covers a stream that is down.
  state.timers.poll = setInterval(() => {
    schedule("status", 0);
    if (!state.streaming) { schedule("events", 0); schedule("equity", 0); }
  }, 5000);
  state.timers.equity = setInterval(() => schedule("equity", 0), 30000);
}

async function start() {
  $("login").hidden = true;
  try {
    await refreshStatus();
  } catch (err) {
    if (!(err instanceof Unauthorized)) toast("cannot read the daemon: " + err.message, true);
    if (err instanceof Unauthorized) return;
  }
  schedule("events", 0);
  schedule("equity", 0);
  startPolling();
  follow();
}

function init() {
  $("login-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    state.token = $("login-token").value.trim();
    (($("login-remember").checked) ? localStorage : sessionStorage).setItem(TOKEN_KEY, state.token);
    $("login-token").value = "";
    start();
  });
  $("forget-token").addEventListener("click", () => askToken(""));
  $("confirm-form").addEventListener("submit", runConfirmed);
  $("confirm-cancel").addEventListener("click", closeConfirm);
  document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && !$("confirm").hidden) closeConfirm(); });
  $("close-only-toggle").addEventListener("click", confirmCloseOnly);
  $("capital-limit-set").addEventListener("click", () => confirmCapital(false));
  $("capital-limit-clear").addEventListener("click", () => confirmCapital(true));
  for (const b of document.querySelectorAll(".window button")) {
    b.addEventListener("click", () => {
      state.window = b.dataset.window;
      for (const o of document.querySelectorAll(".window button")) o.classList.toggle("on", o === b);
      schedule("equity", 0);
    });
  }
  window.addEventListener("resize", () => schedule("equity", 400));
  state.token = loadToken();
  if (state.token) start();
  else askToken("");
}

document.addEventListener("DOMContentLoaded", init);
