// platewatch dashboard page: renders /api/stream (Server-Sent Events) and queries /api/history.
// Plain JS, no build step, no external assets. Every value from MQTT is untrusted: text is set
// with textContent only (never innerHTML), crops come from this origin's /api/crop/<id>.
"use strict";

const S = {
  events: [],            // newest first, mirrors the server's ring
  max: 200,
  cameras: new Map(),    // name -> {view, statsAt (ms, this browser's clock)}
  alerts: [],            // newest first
  status: null,          // runtime status topic: "online" | "offline" | null
  broker: { connected: false },
  streamUp: false,
  staleAfter: 75,
  historyEnabled: false,
  cameraFilter: "",
  nodes: new Map(),      // event_id -> {ev, node}: DOM reuse so crops never reload
};

const $ = (id) => document.getElementById(id);

function el(tag, cls, text) {
  const node = document.createElement(tag);
  if (cls) node.className = cls;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// ------------------------------------------------------------------ formatting

// Date and time, in the browser's time zone, the same for live rows and history results.
function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (isNaN(d)) return iso;
  const hms = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit", hour12: false });
  return d.toLocaleDateString([], { year: "numeric", month: "short", day: "numeric" }) + " " + hms;
}

// The time a row shows is the time it is ordered by: the vehicle's last sighting.
function seenAt(ev) {
  return ev.last_seen || ev.first_seen || "";
}

function fmtNum(v, digits, unit) {
  if (v === null || v === undefined) return "–";
  const s = Number(v).toFixed(digits);
  return unit ? s + unit : s;
}

function fmtAge(seconds) {
  if (seconds < 1) return "just now";
  if (seconds < 90) return Math.round(seconds) + " s ago";
  if (seconds < 5400) return Math.round(seconds / 60) + " min ago";
  return Math.round(seconds / 3600) + " h ago";
}

function cropBox(ev, cls) {
  const box = el("div", cls || "crop");
  if (ev.has_crop) {
    const img = el("img");
    img.alt = "plate crop " + ev.plate;
    img.decoding = "async";
    img.src = "/api/crop/" + encodeURIComponent(ev.event_id);
    box.append(img);
  } else {
    box.append(el("span", "nocrop", ev.plate_hashed ? "hidden (privacy)" : "no crop"));
  }
  return box;
}

function plateChip(ev) {
  const p = el("span", "plate" + (ev.plate_hashed ? " hashed" : ""), ev.plate);
  if (ev.plate_hashed) p.title = "keyed hash (privacy mode)";
  return p;
}

// ------------------------------------------------------------------ camera health

// "<device>/<camera>" (edge.dashboard.server.camera_key): how cards, filters and rows name a camera.
function camKey(x) {
  return x.device ? x.device + "/" + x.camera : x.camera;
}

function runtimeOffline(cam) {
  const st = cam.view.runtime_status;
  return st === undefined ? S.status === "offline" : st === "offline";
}

function health(cam) {
  // Same rule as edge.dashboard.server.camera_health, re-evaluated every second here so
  // stats that stop arriving turn into "no data" without any message.
  if (runtimeOffline(cam)) return "offline";
  const stats = cam.view.stats;
  if (!stats || cam.statsAt === null) return "no data";
  if ((Date.now() - cam.statsAt) / 1000 > S.staleAfter) return "no data";
  return stats.online ? "online" : "offline";
}

function setCamera(view) {
  const prev = S.cameras.get(view.name);
  const statsAt = view.stats_age_s === null || view.stats_age_s === undefined
    ? null : Date.now() - view.stats_age_s * 1000;
  S.cameras.set(view.name, { view, statsAt: statsAt ?? (prev ? prev.statsAt : null) });
  refreshCameraOptions();
}

function metric(label, value) {
  const m = el("div", "metric");
  m.append(el("dt", null, label), el("dd", null, value));
  return m;
}

function renderCameras() {
  const grid = $("cameras");
  const names = [...S.cameras.keys()].sort();
  if (!names.length) {
    grid.replaceChildren(el("p", "empty", "Waiting for cameras… (stats arrive every stats interval)"));
    return;
  }
  const cards = names.map((name) => {
    const cam = S.cameras.get(name);
    const h = health(cam);
    const st = cam.view.stats || {};
    const card = el("article", "camera");
    card.dataset.camera = name;
    card.dataset.health = h;
    const head = el("div", "camera-head");
    head.append(el("span", "camera-name", name), el("span", "health", h));
    const dl = el("dl", "metrics");
    dl.append(
      metric("FPS in", fmtNum(st.fps_in, 1)),
      metric("Analysed", fmtNum(st.fps_analysed, 1, " fps")),
      metric("Dropped", fmtNum(st.frames_dropped, 0)),
      metric("Latency p50", fmtNum(st.latency_ms_p50, 0, " ms")),
      metric("Latency p95", fmtNum(st.latency_ms_p95, 0, " ms")),
      metric("Reconnects", fmtNum(st.reconnects, 0)),
    );
    const foot = el("div", "camera-foot");
    const lp = cam.view.last_plate;
    const left = el("span");
    left.append("last plate ");
    left.append(el("span", "last-plate", lp ? lp.plate : "–"));
    const right = el("span", "updated",
      cam.statsAt === null ? "no stats yet" : "stats " + fmtAge((Date.now() - cam.statsAt) / 1000));
    foot.append(left, right);
    card.append(head, dl, foot);
    if (h === "offline") {
      const why = runtimeOffline(cam) ? "platewatch runtime is offline (status topic)"
        : (st.last_error || "source not delivering frames");
      card.append(el("div", "camera-error", why));
    }
    return card;
  });
  grid.replaceChildren(...cards);
}

function refreshCameraOptions() {
  for (const id of ["camera-filter", "q-camera"]) {
    const sel = $(id);
    const have = new Set([...sel.options].map((o) => o.value));
    for (const name of [...S.cameras.keys()].sort()) {
      if (!have.has(name)) sel.append(new Option(name, name));
    }
  }
}

// ------------------------------------------------------------------ events

function kindOf(ev) {
  return ev.watchlist ? ev.watchlist.kind : "";
}

function buildEvent(ev) {
  const li = el("li", "event");
  li.dataset.eventId = ev.event_id;
  li.dataset.type = ev.type;
  li.dataset.camera = camKey(ev);
  li.dataset.kind = kindOf(ev);
  if (ev.alert) li.dataset.alert = "1";

  const main = el("div", "event-main");
  const line1 = el("div", "line1");
  line1.append(plateChip(ev));
  line1.append(el("span", "badge " + ev.type, ev.type));
  if (ev.watchlist) {
    line1.append(el("span", "badge " + ev.watchlist.kind, ev.watchlist.kind + " · " + ev.watchlist.name));
  }
  if (ev.alert) line1.append(el("span", "badge alert", "alert"));
  if (ev.confidence !== null && ev.confidence !== undefined) {
    const conf = el("span", "conf");
    const bar = el("span", "bar");
    const fill = el("i");
    fill.style.width = Math.round(ev.confidence * 100) + "%";
    bar.append(fill);
    conf.append(bar, Math.round(ev.confidence * 100) + "%");
    conf.title = "confidence";
    line1.append(conf);
  }

  const line2 = el("div", "line2");
  line2.append(el("span", "cam", camKey(ev)));
  const time = el("span", "time", fmtTime(seenAt(ev)));
  time.dataset.iso = seenAt(ev);
  line2.append(time);
  if (ev.direction) {
    const arrows = { entry: "→ entry", exit: "← exit", unknown: "· direction unknown" };
    line2.append(el("span", "dir-" + ev.direction, arrows[ev.direction] || ev.direction));
  }
  for (const z of ev.zones || []) line2.append(el("span", "zone", z));
  main.append(line1, line2);
  if (ev.watchlist) {
    const w = ev.watchlist;
    // Say which entry matched only when it is not the plate itself (fuzzy match or regex).
    const parts = [];
    if (w.entry && w.entry !== ev.plate) {
      parts.push("matched " + w.entry + (w.distance ? " (distance " + w.distance + ")" : ""));
    }
    if (w.description) parts.push(w.description);
    const note = parts.join(" — ") || "on list " + w.name;
    main.append(el("div", "wl-note", note));
  }
  li.append(cropBox(ev), main);
  return li;
}

function nodeFor(ev) {
  const cached = S.nodes.get(ev.event_id);
  if (cached && cached.ev === ev) return cached.node;
  const node = buildEvent(ev);
  if (cached && cached.node.classList.contains("new")) node.classList.add("new");
  S.nodes.set(ev.event_id, { ev, node });
  return node;
}

function renderEvents() {
  // Newest sighting first: a final published late (its car left long ago) goes below the cars
  // seen since, where its time belongs. ISO 8601 UTC strings sort as times.
  S.events.sort((a, b) => (seenAt(a) < seenAt(b) ? 1 : seenAt(a) > seenAt(b) ? -1 : 0));
  const visible = S.events.filter((e) => !S.cameraFilter || camKey(e) === S.cameraFilter);
  const live = new Set(S.events.map((e) => e.event_id));
  for (const id of [...S.nodes.keys()]) if (!live.has(id)) S.nodes.delete(id);
  $("events").replaceChildren(...visible.map(nodeFor));
  $("events-empty").hidden = visible.length > 0;
  $("event-count").textContent = S.events.length ? S.events.length + " shown" : "";
}

function onEvent(msg) {
  const ev = msg.event;
  const gone = new Set(msg.replaces || []);
  const at = S.events.findIndex((e) => e.event_id === ev.event_id);
  if (at >= 0) {
    S.events[at] = ev;  // an update (e.g. the alert for an event already shown): keep its place
  } else {
    S.events = S.events.filter((e) => !gone.has(e.event_id));
    S.events.unshift(ev);
    if (S.events.length > S.max) S.events.length = S.max;
  }
  renderEvents();
  const node = S.nodes.get(ev.event_id);
  if (node && at < 0) {
    node.node.classList.add("new");
    setTimeout(() => node.node.classList.remove("new"), 1500);
  }
}

// ------------------------------------------------------------------ alerts

function renderAlerts() {
  const items = S.alerts.slice(0, 12).map((a) => {
    const li = el("li", "alert-item");
    li.dataset.kind = a.kind;
    li.dataset.eventId = a.event_id;
    const body = el("div");
    const top = el("div", "line1");
    top.append(plateChip(a), el("span", "badge " + a.kind, a.kind + (a.list ? " · " + a.list : "")));
    // The matched entry matters when it differs from the read (fuzzy match or a regex).
    const why = a.entry && a.entry !== a.plate ? "matched " + a.entry : (a.description || "");
    body.append(top, el("div", "meta", [camKey(a), fmtTime(a.last_seen), why].filter(Boolean).join(" · ")));
    li.append(cropBox(a), body);
    return li;
  });
  $("alerts").replaceChildren(...items);
  $("alerts-empty").hidden = items.length > 0;
}

function onAlert(a) {
  S.alerts = [a, ...S.alerts.filter((x) => x.event_id !== a.event_id && x.track !== a.track)].slice(0, 50);
  renderAlerts();
}

// ------------------------------------------------------------------ status pills

function renderPills() {
  const b = $("broker-pill");
  if (!S.streamUp) {
    b.dataset.state = "down";
    b.textContent = "dashboard server unreachable";
  } else {
    b.dataset.state = S.broker.connected ? "up" : "down";
    const where = S.broker.host ? " " + S.broker.host + ":" + S.broker.port : "";
    b.textContent = "MQTT" + where + (S.broker.connected ? "" : " — disconnected");
  }
  const r = $("runtime-pill");
  r.dataset.state = S.status === "online" ? "up" : S.status === "offline" ? "down" : "unknown";
  r.textContent = "runtime " + (S.status || "unknown");
}

function tick() {
  $("clock").textContent = new Date().toLocaleTimeString([], { hour12: false });
  renderCameras();
}

// ------------------------------------------------------------------ history search

function setHistoryEnabled(on) {
  S.historyEnabled = on;
  for (const node of $("search").elements) node.disabled = !on;
  $("search-note").textContent = on ? "" : "History is off: start the dashboard with --history DB to search stored events.";
  if (on) refreshDevices();
}

async function search(evt) {
  if (evt) evt.preventDefault();
  if (!S.historyEnabled) return;
  const form = new FormData($("search"));
  const params = new URLSearchParams();
  for (const [k, v] of form) if (v) params.set(k, v);
  params.set("limit", "50");
  const note = $("search-note");
  note.textContent = "Searching…";
  try {
    const resp = await fetch("/api/history?" + params.toString());
    const data = await resp.json();
    if (!resp.ok) throw new Error(data.error || resp.statusText);
    note.textContent = data.count ? data.count + " result" + (data.count === 1 ? "" : "s") : "No matching events.";
    $("results").replaceChildren(...data.results.map(renderResult));
  } catch (err) {
    note.textContent = "Search failed: " + err.message;
    $("results").replaceChildren();
  }
}

function renderResult(r) {
  const li = el("li", "result");
  li.dataset.eventId = r.event_id;
  li.dataset.kind = r.watchlist_kind || "";
  const ev = { event_id: r.event_id, plate: r.plate, plate_hashed: r.plate_hashed, has_crop: !!r.crop_url };
  const body = el("div");
  const top = el("div", "line1");
  top.append(plateChip(ev));
  if (r.distance) top.append(el("span", "badge", "± " + r.distance));
  if (r.watchlist) top.append(el("span", "badge " + (r.watchlist_kind || ""), r.watchlist));
  const bits = [camKey(r), fmtTime(r.last_seen), Math.round(r.confidence * 100) + "%"];
  if (r.direction) bits.push(r.direction);
  if (r.zones && r.zones.length) bits.push(r.zones.join(", "));
  body.append(top, el("div", "meta", bits.join(" · ")));
  li.append(cropBox(ev), body);
  return li;
}

// ------------------------------------------------------------------ stream

function applySnapshot(snap) {
  S.max = snap.max_events || 200;
  S.staleAfter = snap.stale_after_s;
  S.status = snap.status;
  S.broker = snap.broker || { connected: false };
  S.events = snap.events;
  S.alerts = snap.alerts;
  S.cameras.clear();
  for (const cam of snap.cameras) setCamera(cam);
  setHistoryEnabled(!!snap.history_enabled);
  renderEvents();
  renderAlerts();
  renderCameras();
  renderPills();
  document.body.dataset.ready = "1";
}

function connect() {
  const es = new EventSource("/api/stream");
  const on = (type, fn) => es.addEventListener(type, (m) => fn(JSON.parse(m.data)));
  es.onopen = () => { S.streamUp = true; renderPills(); };
  // EventSource reconnects by itself; the server sends a fresh snapshot on every connection.
  es.onerror = () => { S.streamUp = es.readyState === EventSource.OPEN; renderPills(); };
  on("snapshot", (snap) => { S.streamUp = true; applySnapshot(snap); });
  on("event", onEvent);
  on("alert", onAlert);
  on("camera", (view) => { setCamera(view); renderCameras(); });
  on("status", (m) => { S.status = m.status; renderPills(); renderCameras(); });
  on("broker", (m) => { S.broker = m; renderPills(); });
}

// ------------------------------------------------------------------ devices (history store)

async function refreshDevices() {
  if (!S.historyEnabled) return;
  try {
    const resp = await fetch("/api/devices", { cache: "no-store" });
    if (!resp.ok) return;
    const data = await resp.json();
    const rows = data.cameras.map((c) => {
      const tr = el("tr");
      tr.dataset.health = c.health;
      const st = c.stats || {};
      const fps = st.fps_analysed === null || st.fps_analysed === undefined ? "" : st.fps_analysed.toFixed(1);
      const age = c.stats_age_s === null || c.stats_age_s === undefined ? "" : fmtAge(c.stats_age_s);
      for (const v of [c.device || "", c.camera || "", c.health, fps, age, c.last_event_at ? fmtTime(c.last_event_at) : ""]) {
        tr.append(el("td", null, v));
      }
      return tr;
    });
    $("devices").replaceChildren(...rows);
    $("devices-panel").hidden = rows.length === 0;
  } catch (e) {
    // The next refresh tries again; the live part of the page does not depend on it.
  }
}

document.addEventListener("DOMContentLoaded", () => {
  $("camera-filter").addEventListener("change", (e) => { S.cameraFilter = e.target.value; renderEvents(); });
  $("search").addEventListener("submit", search);
  setHistoryEnabled(false);
  renderPills();
  tick();
  setInterval(tick, 1000);
  setInterval(refreshDevices, 10000);
  connect();
});
