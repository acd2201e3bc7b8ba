// worldpool dashboard. Live from /api/events (Server-Sent Events, with a
// `samples` snapshot every few seconds for CPU, memory and checks),
// resynced from /api/workers whenever the stream (re)connects. What arrives
// updates the model at once; the DOM follows once per animation frame.
// No framework, no build step: this file is served as is.
(function () {
  "use strict";

  const SAMPLE_SECONDS = 2;
  const HISTORY = 60; // sparkline points
  const LOG_MAX = 300;
  const DELTAS_MAX = 300;
  const TOKEN_KEY = "worldpool.token";
  const POOL_EVENTS = ["started", "ready", "exited", "backoff", "fatal", "stopped", "phase"];
  const WORKER_EVENTS = ["run_finished", "run_failed", "deltas"];
  const LIFECYCLE = new Set(["started", "ready", "exited", "backoff", "fatal", "stopped"]);
  const BAD_REASONS = new Set(["crashed", "cpu_limit", "memory_limit", "hung"]);
  const SVG_NS = "http://www.w3.org/2000/svg";
  const $ = (id) => document.getElementById(id);

  // ---------------------------------------------------------------- helpers
  let skewMs = 0; // server clock minus this browser's clock
  const serverNow = () => Date.now() + skewMs;
  const intFmt = new Intl.NumberFormat();
  const timeFmt = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });
  const dateTimeFmt = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });

  function parseTime(s) {
    if (s == null) return null;
    const t = Date.parse(s);
    return Number.isNaN(t) ? null : t;
  }
  function fmtDur(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    if (s < 60) return s + " s";
    const m = Math.floor(s / 60);
    if (m < 60) return m + " min " + String(s % 60).padStart(2, "0") + " s";
    const h = Math.floor(m / 60);
    if (h < 48) return h + " h " + String(m % 60).padStart(2, "0") + " min";
    return Math.floor(h / 24) + " d " + (h % 24) + " h";
  }
  function rel(t) {
    if (t == null) return "—";
    const d = (serverNow() - t) / 1000;
    if (Math.abs(d) < 1) return "now";
    return d > 0 ? fmtDur(d) + " ago" : "in " + fmtDur(-d);
  }
  function fmtBytes(b) {
    if (b == null) return "—";
    if (b < 1024 * 1024) return (b / 1024).toFixed(0) + " KiB";
    if (b < 1024 * 1024 * 1024) return (b / 1048576).toFixed(1) + " MiB";
    return (b / 1073741824).toFixed(2) + " GiB";
  }
  function fmtInt(n) {
    return n == null || Number.isNaN(Number(n)) ? "—" : intFmt.format(Number(n));
  }
  function shortNum(n) {
    const a = Math.abs(n);
    if (a >= 1e9) return (n / 1e9).toFixed(a >= 1e10 ? 0 : 1) + "G";
    if (a >= 1e6) return (n / 1e6).toFixed(a >= 1e7 ? 0 : 1) + "M";
    if (a >= 1e3) return (n / 1e3).toFixed(a >= 1e4 ? 0 : 1) + "k";
    return String(n);
  }
  // The site's own local time of an RFC 3339 string ("29/11 09:23").
  function siteTime(s) {
    const m = /^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d)/.exec(s || "");
    return m ? m[3] + "/" + m[2] + " " + m[4] + ":" + m[5] : String(s || "—");
  }
  function el(tag, cls, text) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  }
  function setText(e, text) {
    const t = text == null ? "" : String(text);
    if (e.textContent !== t) e.textContent = t;
  }
  function setAttr(e, name, value) {
    const v = value == null ? "" : String(value);
    if (e.getAttribute(name) !== v) e.setAttribute(name, v);
  }
  function fold(s) {
    return String(s).normalize("NFD").replace(/[\u0300-\u036f]/g, "").toLowerCase();
  }
  function showMsg(node, text, kind) {
    node.textContent = text || "";
    node.classList.toggle("error", kind === "error");
    node.classList.toggle("ok", kind === "ok");
  }
  // A datetime-local value as RFC 3339 with this browser's offset.
  function localToRfc3339(value) {
    if (!value) return null;
    const d = new Date(value);
    if (Number.isNaN(d.getTime())) return null;
    const off = -d.getTimezoneOffset();
    const sign = off >= 0 ? "+" : "-";
    const pad = (n) => String(Math.abs(n)).padStart(2, "0");
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds()) +
      sign + pad(Math.trunc(off / 60)) + ":" + pad(off % 60);
  }
  function toLocalInput(ms) {
    const d = new Date(ms);
    const pad = (n) => String(n).padStart(2, "0");
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) + "T" +
      pad(d.getHours()) + ":" + pad(d.getMinutes());
  }

  // One HTTP call: {ok, status, body, error} where `error` is the API's
  // `{error, message}` or a description of what failed. Never throws.
  async function call(method, url, body, token) {
    const headers = { Accept: "application/json" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = "Bearer " + token;
    let res;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        cache: "no-store",
      });
    } catch (e) {
      return { ok: false, status: 0, body: null, error: { error: "network", message: "cannot reach the API (" + e.message + ")" } };
    }
    let json = null;
    try {
      json = await res.json();
    } catch (_) {
      json = null;
    }
    if (res.ok) return { ok: true, status: res.status, body: json, date: res.headers.get("Date") };
    const error = json && typeof json === "object" && json.message
      ? { error: json.error || "error", message: json.message }
      : { error: "http_" + res.status, message: res.statusText || "request failed" };
    return { ok: false, status: res.status, body: json, error };
  }
  // A 404 that means "this server has no such endpoint" (not "no such
  // player"): axum's fallback answers `not_found`, or no JSON at all.
  function missingEndpoint(r) {
    return r.status === 404 && (!r.body || r.body.error === "not_found");
  }
  function describe(r) {
    return r.status ? r.status + " " + r.error.error + ": " + r.error.message : r.error.message;
  }

  // ------------------------------------------------------------ the workers
  const rows = new Map(); // world -> Row
  let order = [];
  const tbody = $("workers-body");
  let filterText = "";

  const COLUMNS = [
    ["world", "World"], ["state", "State"], ["pid", "PID"], ["phase", "Phase"],
    ["uptime", "Uptime"], ["restarts", "Restarts"], ["exit", "Last exit"],
    ["next", "Next restart"], ["cpu", "CPU"], ["mem", "Memory"], ["check", "Last check"],
    ["success", "Last success"], ["rows", "Rows"], ["err", "Last error"], ["actions", "Actions"],
  ];

  function sparkline() {
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("class", "spark");
    svg.setAttribute("viewBox", "0 0 60 18");
    svg.setAttribute("preserveAspectRatio", "none");
    svg.setAttribute("aria-hidden", "true");
    const path = document.createElementNS(SVG_NS, "path");
    path.setAttribute("fill", "none");
    svg.appendChild(path);
    return { svg, path };
  }
  function drawSpark(line, values, floor) {
    let max = floor;
    for (const v of values) if (v != null && v > max) max = v;
    // Until the history is full, the points spread over the whole width.
    const step = 60 / Math.max(1, values.length - 1);
    const start = 0;
    // Runs of points between gaps (no process); a lone point is a dash.
    const runs = [];
    let run = null;
    values.forEach((v, i) => {
      if (v == null) {
        run = null;
        return;
      }
      if (!run) {
        run = [];
        runs.push(run);
      }
      run.push(((start + i) * step).toFixed(1) + " " + (17 - (v / max) * 16).toFixed(1));
    });
    const d = runs.map((r) => "M" + r.join("L") + (r.length === 1 ? "h1.5" : "")).join("");
    setAttr(line.path, "d", d);
  }

  class Row {
    constructor(world) {
      this.world = world;
      this.data = { world };
      this.cpu = [];
      this.rss = [];
      this.lastSampleAt = 0;
      this.seq = 0; // lifecycle events applied (a snapshot older than one is stale)
      this.busy = false;
      this.tr = el("tr");
      this.tr.dataset.world = world;
      this.c = {};
      for (const [key, label] of COLUMNS) {
        const td = el("td", "c-" + key);
        td.dataset.label = label;
        this.tr.appendChild(td);
        this.c[key] = td;
      }
      this.c.world.classList.add("world");
      this.c.world.textContent = world;
      this.badge = el("span", "badge");
      this.c.state.appendChild(this.badge);
      this.c.pid.classList.add("num");
      this.c.restarts.classList.add("num");
      this.c.rows.classList.add("num");
      this.exitReason = el("span", "reason");
      this.exitSub = el("span", "sub");
      this.c.exit.append(this.exitReason, document.createElement("br"), this.exitSub);
      this.cpuV = el("span", "v");
      this.cpuLine = sparkline();
      this.c.cpu.appendChild(el("span", "metric"));
      this.c.cpu.firstChild.append(this.cpuV, this.cpuLine.svg);
      this.memV = el("span", "v");
      this.memLine = sparkline();
      this.c.mem.appendChild(el("span", "metric"));
      this.c.mem.firstChild.append(this.memV, this.memLine.svg);
      this.errText = null;
      this.c.err.textContent = "—";
      this.c.err.classList.add("err");
      const actions = el("div", "actions");
      this.buttons = ["restart", "stop", "start"].map((verb) => {
        const b = el("button", "small", verb[0].toUpperCase() + verb.slice(1));
        b.type = "button";
        b.dataset.verb = verb;
        b.setAttribute("aria-label", verb + " " + world);
        b.addEventListener("click", () => controlOne(verb, this));
        actions.appendChild(b);
        return b;
      });
      this.msg = el("span", "row-msg");
      this.msg.setAttribute("role", "status");
      this.c.actions.append(actions, this.msg);
    }

    apply(data, sampleAt) {
      this.data = data;
      if (sampleAt != null && sampleAt - this.lastSampleAt >= 900) {
        this.lastSampleAt = sampleAt;
        this.cpu.push(data.pid == null ? null : data.cpu_percent);
        this.rss.push(data.pid == null ? null : data.rss_bytes);
        if (this.cpu.length > HISTORY) this.cpu.shift();
        if (this.rss.length > HISTORY) this.rss.shift();
        this.sparksDirty = true;
      }
    }

    render() {
      const d = this.data;
      const state = d.state || "unknown";
      setAttr(this.tr, "data-state", state);
      setText(this.badge, state);
      setAttr(this.badge, "class", "badge st-" + state);
      setAttr(this.badge, "title", d.fatal_reason ? "fatal: " + d.fatal_reason : "since " + (d.since || "?"));
      setText(this.c.pid, d.pid == null ? "—" : d.pid);
      setText(this.c.phase, d.phase || "—");
      setText(this.c.restarts, d.restarts == null ? "—" : d.restarts);
      const exit = d.last_exit;
      if (exit) {
        setText(this.exitReason, exit.reason);
        setAttr(this.exitReason, "class", "reason" + (BAD_REASONS.has(exit.reason) ? " reason-bad" : ""));
        setAttr(this.c.exit, "data-reason", exit.reason);
        const how = exit.signal != null ? "signal " + exit.signal : exit.code != null ? "code " + exit.code : "";
        this.exitTime = parseTime(exit.at);
        this.exitHow = how;
        setAttr(this.c.exit, "title", dateTimeFmt.format(new Date(this.exitTime || 0)) + (how ? " · " + how : "") + " · ran " + fmtDur(exit.uptime_s || 0));
      } else {
        setText(this.exitReason, "—");
        setAttr(this.exitReason, "class", "reason");
        setAttr(this.c.exit, "data-reason", "");
        this.exitTime = null;
        this.exitHow = "";
      }
      const cpu = d.pid == null ? null : d.cpu_percent;
      setText(this.cpuV, cpu == null ? "—" : cpu.toFixed(1) + " %");
      setText(this.memV, fmtBytes(d.pid == null ? null : d.rss_bytes));
      // PSS: shared pages (the binary, libraries) divided among the
      // processes that map them; what the worker really costs.
      setAttr(this.c.mem, "title", d.pid == null ? "" : "RSS " + fmtBytes(d.rss_bytes) + " · PSS " + fmtBytes(d.pss_bytes) + " (shared pages divided among processes)");
      if (this.sparksDirty) {
        this.sparksDirty = false;
        drawSpark(this.cpuLine, this.cpu, 5);
        drawSpark(this.memLine, this.rss, 1);
      }
      setText(this.c.rows, d.rows_last_run == null ? "—" : fmtInt(d.rows_last_run));
      this.renderError(d.last_error || (d.state === "fatal" ? d.fatal_reason : null));
      this.renderTimes();
    }

    renderError(text) {
      if ((this.errText || null) === (text || null)) return;
      this.errText = text || null;
      this.c.err.textContent = "";
      if (!text) {
        this.c.err.textContent = "—";
        return;
      }
      const det = el("details");
      const sum = el("summary", null, text.length > 40 ? text.slice(0, 40) + "…" : text);
      det.append(sum, el("pre", null, text));
      this.c.err.appendChild(det);
    }

    // What changes with the clock alone.
    renderTimes() {
      const d = this.data;
      const started = parseTime(d.started_at);
      setText(this.c.uptime, d.pid != null && started != null ? fmtDur((serverNow() - started) / 1000) : "—");
      setText(this.exitSub, this.exitTime == null ? "" : rel(this.exitTime) + (this.exitHow ? " · " + this.exitHow : ""));
      const next = parseTime(d.next_restart_at);
      setText(this.c.next, next == null ? "—" : rel(next));
      this.timeCell(this.c.check, d.last_check);
      this.timeCell(this.c.success, d.last_success);
    }

    timeCell(td, iso) {
      const t = parseTime(iso);
      setText(td, rel(t));
      setAttr(td, "title", t == null ? "" : dateTimeFmt.format(new Date(t)));
    }

    matches() {
      return !filterText || fold(this.world).includes(filterText);
    }
  }

  function ensureRow(world) {
    let r = rows.get(world);
    if (!r) {
      r = new Row(world);
      rows.set(world, r);
    }
    return r;
  }

  // Replace the whole list (config order), keeping rows and histories.
  function applyList(list, sampleAt, seqs) {
    const names = list.map((w) => w.world);
    const keep = new Set(names);
    for (const [world, r] of rows) {
      if (!keep.has(world)) {
        r.tr.remove();
        rows.delete(world);
      }
    }
    for (const w of list) {
      const r = ensureRow(w.world);
      if (seqs && seqs.has(w.world) && seqs.get(w.world) !== r.seq) {
        wantRefresh(w.world); // an event arrived while the list was on its way
        continue;
      }
      r.apply(w, sampleAt);
      dirty.add(r);
    }
    if (names.join("\u0000") !== order.join("\u0000")) {
      order = names;
      const frag = document.createDocumentFragment();
      for (const n of order) frag.appendChild(rows.get(n).tr);
      tbody.appendChild(frag);
      applyFilter();
      worldsChanged = true;
    }
  }

  function applyFilter() {
    for (const r of rows.values()) r.tr.classList.toggle("hidden", !r.matches());
  }

  // ------------------------------------------------------ updates, frames
  // What arrives (events, samples, lists) updates the model at once; the
  // DOM follows once per animation frame, for every row touched since the
  // last one. A hidden tab gets no frames: the model stays current and
  // bounded (rows, capped log and deltas), and the next frame catches up.
  const dirty = new Set();
  let frameQueued = false;
  let clockDue = false;
  let summaryDue = true;
  let worldsChanged = false;
  const pendingLog = [];

  function schedule() {
    if (frameQueued) return;
    frameQueued = true;
    requestAnimationFrame(frame);
  }
  function enqueue(item) {
    try {
      applyItem(item);
    } catch (e) {
      console.warn("dashboard: cannot apply", item.kind, item.name, e);
    }
    schedule();
  }

  function frame() {
    frameQueued = false;
    for (const r of dirty) r.render();
    if (clockDue) {
      clockDue = false;
      for (const r of rows.values()) if (!dirty.has(r)) r.renderTimes();
    }
    if (dirty.size) summaryDue = true;
    dirty.clear();
    if (summaryDue) {
      summaryDue = false;
      renderSummary();
    }
    flushLog();
    if (worldsChanged) {
      worldsChanged = false;
      renderWorldOptions();
    }
    if (deltasDirty) {
      deltasDirty = false;
      renderDeltas();
    }
  }

  function applyItem(item) {
    switch (item.kind) {
      case "list":
        if (item.date) {
          const t = parseTime(item.date);
          if (t != null && Math.abs(t - Date.now()) > 2000) skewMs = t - Date.now();
        }
        applyList(item.list, serverNow(), item.seqs);
        return;
      case "worker": {
        const r = rows.get(item.data.world);
        if (r && r.seq === item.seq) {
          r.apply(item.data, null);
          dirty.add(r);
        }
        return;
      }
      case "samples": {
        const at = parseTime(item.data.at);
        if (at != null) skewMs = at - Date.now();
        applyList(item.data.workers || [], at == null ? serverNow() : at, null);
        return;
      }
      case "event":
        applyEvent(item.name, item.data);
        return;
      default:
    }
  }

  function applyEvent(name, ev) {
    logEvent(name, ev);
    if (name === "deltas") {
      deltasIncoming(ev.worker, ev.data || {});
      return;
    }
    const r = rows.get(ev.worker);
    if (!r) {
      if (LIFECYCLE.has(name)) resync(); // a worker this page does not know
      return;
    }
    const d = Object.assign({}, r.data);
    const now = new Date(serverNow()).toISOString();
    switch (name) {
      case "started":
        d.pid = ev.pid;
        d.state = "starting";
        d.since = now;
        d.started_at = now;
        d.phase = null;
        d.cpu_percent = null;
        d.rss_bytes = null;
        d.pss_bytes = null;
        d.last_check = null;
        d.last_success = null;
        d.last_error = null;
        d.rows_last_run = null;
        d.next_restart_at = null;
        break;
      case "ready":
        if (d.pid == null || d.pid === ev.pid) {
          d.pid = ev.pid;
          d.state = "running";
          d.since = now;
        }
        break;
      case "exited":
        if (d.pid == null || d.pid === ev.pid) {
          d.pid = null;
          d.phase = null;
          d.last_exit = ev.exit;
          d.since = now;
        }
        break;
      case "backoff":
        d.state = "backoff";
        d.since = now;
        d.next_restart_at = ev.next_restart_at;
        break;
      case "fatal":
        d.state = "fatal";
        d.since = now;
        d.fatal_reason = ev.reason;
        d.next_restart_at = ev.next_restart_at;
        break;
      case "stopped":
        d.state = "stopped";
        d.since = now;
        d.pid = null;
        d.phase = null;
        d.next_restart_at = null;
        break;
      case "phase":
        if (d.pid != null) d.phase = ev.phase;
        break;
      case "run_finished":
        if (ev.data && ev.data.rows != null) d.rows_last_run = ev.data.rows;
        break;
      case "run_failed":
        if (ev.data && ev.data.error) d.last_error = ev.data.error;
        break;
      default:
    }
    r.data = d;
    dirty.add(r);
    if (LIFECYCLE.has(name)) {
      // Counters the event does not carry (restarts, failures) come from
      // the worker's own view, fetched once the burst is over.
      r.seq += 1;
      wantRefresh(r.world);
    }
  }

  // Fetch the views of workers that just changed (coalesced).
  const refreshWanted = new Set();
  let refreshTimer = null;
  let refreshing = false;
  function wantRefresh(world) {
    refreshWanted.add(world);
    if (!refreshTimer && !refreshing) refreshTimer = setTimeout(refresh, 40);
  }
  async function refresh() {
    refreshTimer = null;
    const worlds = [...refreshWanted];
    refreshWanted.clear();
    if (!worlds.length) return;
    refreshing = true;
    try {
      if (worlds.length > 8) {
        await resyncNow();
      } else {
        await Promise.all(worlds.map(async (world) => {
          const r = rows.get(world);
          if (!r) return;
          const seq = r.seq;
          const res = await call("GET", "/api/workers/" + encodeURIComponent(world));
          if (res.ok) {
            if (r.seq === seq) enqueue({ kind: "worker", data: res.body, seq });
            else refreshWanted.add(world);
          } else if (res.status === 404) {
            resync();
          }
        }));
      }
    } finally {
      refreshing = false;
      if (refreshWanted.size && !refreshTimer) refreshTimer = setTimeout(refresh, 100);
    }
  }

  // ------------------------------------------------------------- summary
  function renderSummary() {
    const counts = {};
    let cpu = 0;
    let rss = 0;
    let pss = 0;
    for (const r of rows.values()) {
      const s = r.data.state || "unknown";
      counts[s] = (counts[s] || 0) + 1;
      if (r.data.pid != null) {
        cpu += r.data.cpu_percent || 0;
        rss += r.data.rss_bytes || 0;
        pss += r.data.pss_bytes || 0;
      }
    }
    const parts = [rows.size + (rows.size === 1 ? " worker" : " workers")];
    for (const s of ["running", "starting", "backoff", "stopping", "stopped", "fatal"]) {
      if (counts[s]) parts.push(counts[s] + " " + s);
    }
    parts.push("CPU " + cpu.toFixed(1) + " %", "RSS " + fmtBytes(rss), "PSS " + fmtBytes(pss));
    setText($("summary"), parts.join(" · "));
  }

  // ------------------------------------------------------------ event log
  const logList = $("event-log");
  const showPhases = $("show-phases");

  function describeEvent(name, ev) {
    const data = ev.data || {};
    switch (name) {
      case "started": return ["started, pid " + ev.pid, ""];
      case "ready": return ["ready, pid " + ev.pid, "ev-ok"];
      case "exited": {
        const x = ev.exit || {};
        const how = x.signal != null ? "signal " + x.signal : x.code != null ? "code " + x.code : "";
        return ["exited: " + x.reason + (how ? " (" + how + ")" : "") + " after " + fmtDur(x.uptime_s || 0),
          BAD_REASONS.has(x.reason) ? "ev-bad" : ""];
      }
      case "backoff": {
        const t = parseTime(ev.next_restart_at);
        return ["backoff: next start " + (t == null ? "?" : timeFmt.format(new Date(t))), "ev-warn"];
      }
      case "fatal": {
        const t = parseTime(ev.next_restart_at);
        return ["fatal: " + ev.reason + (t == null ? "" : "; retry at " + timeFmt.format(new Date(t))), "ev-bad"];
      }
      case "stopped": return ["stopped", ""];
      case "phase": return showPhases.checked ? ["phase " + ev.phase, ""] : null;
      case "run_finished":
        return ["run finished: " + fmtInt(data.rows) + " rows, " + fmtInt(data.deltas) + " deltas" +
          (data.rebased ? " (re-based after the daily reset)" : "") + ", update " + siteTime(data.update_time), "ev-ok"];
      case "run_failed": return ["run failed: " + (data.error || "?"), "ev-bad"];
      default: return null;
    }
  }
  function logEvent(name, ev) {
    const what = describeEvent(name, ev);
    if (what) {
      pendingLog.push([serverNow(), ev.worker || "", what[0], what[1], name]);
      if (pendingLog.length > LOG_MAX) pendingLog.shift();
    }
  }
  function logSystem(text, cls) {
    pendingLog.push([serverNow(), "dashboard", text, cls || "ev-warn", "system"]);
    schedule();
  }
  function flushLog() {
    if (!pendingLog.length) return;
    const frag = document.createDocumentFragment();
    for (let i = pendingLog.length - 1; i >= 0; i -= 1) {
      const [t, world, text, cls, name] = pendingLog[i];
      const li = el("li", cls);
      li.dataset.event = name;
      const time = el("time", null, timeFmt.format(new Date(t)));
      time.dateTime = new Date(t).toISOString();
      li.append(time, el("span", "w", world), el("span", "t", text));
      frag.appendChild(li);
    }
    pendingLog.length = 0;
    logList.insertBefore(frag, logList.firstChild);
    while (logList.childElementCount > LOG_MAX) logList.lastElementChild.remove();
  }

  // ------------------------------------------------------------- control
  const tokenInput = $("token");
  const controlMsg = $("control-msg");
  function token() {
    return tokenInput.value.trim();
  }
  try {
    tokenInput.value = sessionStorage.getItem(TOKEN_KEY) || "";
  } catch (_) {
    // storage disabled: the field still works for this page
  }
  tokenInput.addEventListener("input", () => {
    try {
      if (token()) sessionStorage.setItem(TOKEN_KEY, token());
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      // ignore
    }
  });
  $("token-forget").addEventListener("click", () => {
    tokenInput.value = "";
    try {
      sessionStorage.removeItem(TOKEN_KEY);
    } catch (_) {
      // ignore
    }
    showMsg(controlMsg, "Token forgotten.", "ok");
  });

  async function post(verb, world) {
    return call("POST", "/api/workers/" + encodeURIComponent(world) + "/" + verb, undefined, token());
  }
  function setBusy(r, busy) {
    r.busy = busy;
    for (const b of r.buttons) b.disabled = busy;
    r.c.actions.setAttribute("aria-busy", busy ? "true" : "false");
  }
  async function controlOne(verb, r) {
    if (r.busy) return;
    setBusy(r, true);
    showMsg(controlMsg, verb + " " + r.world + "…");
    try {
      const res = await post(verb, r.world);
      if (res.ok) {
        const text = verb + " " + r.world + ": done, now " + (res.body && res.body.state);
        showMsg(controlMsg, text, "ok");
        showMsg(r.msg, "", null);
      } else {
        const text = verb + " " + r.world + " refused: " + describe(res);
        showMsg(controlMsg, text, "error");
        showMsg(r.msg, res.status ? res.status + " " + res.error.error : res.error.message, "error");
      }
    } finally {
      setBusy(r, false);
    }
  }
  async function controlAll(verb, buttons) {
    const worlds = order.slice();
    if (!worlds.length) return;
    buttons.forEach((b) => { b.disabled = true; });
    showMsg(controlMsg, verb + " all " + worlds.length + " workers…");
    let done = 0;
    let failed = 0;
    let firstError = null;
    let stop = false;
    let next = 0;
    async function lane() {
      while (!stop && next < worlds.length) {
        const world = worlds[next];
        next += 1;
        const res = await post(verb, world);
        if (res.ok) {
          done += 1;
        } else {
          failed += 1;
          if (!firstError) firstError = world + ": " + describe(res);
          // A token problem is the same for every worker: say it once.
          if (res.status === 401 || res.status === 403) stop = true;
        }
      }
    }
    try {
      await Promise.all([lane(), lane(), lane(), lane()]);
    } finally {
      buttons.forEach((b) => { b.disabled = false; });
    }
    if (failed) showMsg(controlMsg, verb + " all refused: " + firstError + (done ? " (" + done + " done)" : ""), "error");
    else showMsg(controlMsg, verb + " all: " + done + " done", "ok");
  }
  const allButtons = [...document.querySelectorAll("button[data-all]")];
  for (const b of allButtons) b.addEventListener("click", () => controlAll(b.dataset.all, allButtons));

  $("worker-filter").addEventListener("input", (e) => {
    filterText = fold(e.target.value.trim());
    applyFilter();
  });

  // ------------------------------------------------------------ connection
  const conn = $("conn");
  let source = null;
  let attempt = 0;
  let reconnectTimer = null;
  let everLive = false;

  function setConn(state, text) {
    conn.dataset.state = state;
    conn.textContent = text;
    document.body.classList.toggle("stale", state !== "live");
  }

  function connect() {
    reconnectTimer = null;
    if (source) source.close();
    setConn(attempt ? "reconnecting" : "connecting", attempt ? "reconnecting… (attempt " + attempt + ")" : "connecting…");
    const es = new EventSource("/api/events?samples=" + SAMPLE_SECONDS);
    source = es;
    es.onopen = () => {
      if (source !== es) return;
      attempt = 0;
      setConn("resyncing", "resyncing…");
      resyncNow().then((ok) => {
        if (source !== es) return;
        if (ok) {
          if (everLive) logSystem("reconnected and resynced", "ev-ok");
          everLive = true;
          setConn("live", "live");
          loadDeltas();
        } else {
          retry(es, "cannot read /api/workers");
        }
      });
    };
    es.onerror = () => retry(es, "connection lost");
    const onEvent = (name) => (e) => {
      if (source !== es) return;
      let data;
      try {
        data = JSON.parse(e.data);
      } catch (_) {
        return;
      }
      enqueue({ kind: "event", name, data });
    };
    for (const name of POOL_EVENTS.concat(WORKER_EVENTS)) es.addEventListener(name, onEvent(name));
    for (const name of ["lease_acquired", "lease_lost", "node_joined", "node_gone"]) {
      es.addEventListener(name, () => {
        if (source === es) loadCluster();
      });
    }
    es.addEventListener("samples", (e) => {
      if (source !== es) return;
      try {
        enqueue({ kind: "samples", data: JSON.parse(e.data) });
      } catch (_) {
        // a malformed sample is skipped; the next one comes soon
      }
    });
    es.addEventListener("lagged", () => retry(es, "the page fell behind the event stream"));
  }

  function retry(es, why) {
    if (source !== es) return;
    es.close();
    source = null;
    attempt += 1;
    if (attempt === 1) logSystem(why + "; reconnecting");
    const delay = Math.min(5000, 250 * 2 ** Math.min(attempt, 5)) * (0.8 + Math.random() * 0.4);
    setConn("reconnecting", "reconnecting… (attempt " + attempt + ")");
    if (!reconnectTimer) reconnectTimer = setTimeout(connect, delay);
  }

  // Read /api/workers and apply it; true on success.
  async function resyncNow() {
    const seqs = new Map();
    for (const [world, r] of rows) seqs.set(world, r.seq);
    const res = await call("GET", "/api/workers");
    if (!res.ok || !Array.isArray(res.body)) {
      showMsg($("workers-msg"), "Cannot read the workers: " + describe(res), "error");
      return false;
    }
    showMsg($("workers-msg"), res.body.length ? "" : "This pool has no workers.", null);
    enqueue({ kind: "list", list: res.body, seqs, date: res.date });
    return true;
  }
  function resync() {
    resyncNow();
  }

  // A clock for "x s ago": re-renders time cells once a second.
  setInterval(() => {
    clockDue = true;
    schedule();
  }, 1000);

  // -------------------------------------------------------------- deltas
  const deltaWorld = $("delta-world");
  const deltaGuild = $("delta-guild");
  const deltasMsg = $("deltas-msg");
  const deltasBody = $("deltas-body");
  let deltaRows = [];
  let deltasDirty = false;
  const knownWorlds = new Set();
  const knownGuilds = new Set();
  const knownPlayers = new Set();
  let deltaLoad = 0;

  function addOption(select, value) {
    for (const o of select.options) if (o.value === value) return;
    const opt = el("option", null, value);
    opt.value = value;
    const after = [...select.options].slice(1).find((o) => o.value.localeCompare(value) > 0);
    select.insertBefore(opt, after || null);
  }
  function renderWorldOptions() {
    for (const w of order) if (w !== "single") knownWorlds.add(w);
    for (const w of knownWorlds) addOption(deltaWorld, w);
    for (const g of knownGuilds) addOption(deltaGuild, g);
    const list = $("known-players");
    if (list.childElementCount !== knownPlayers.size) {
      list.textContent = "";
      for (const p of [...knownPlayers].sort()) {
        const o = el("option");
        o.value = p;
        list.appendChild(o);
      }
    }
  }
  function learn(world, guild, name) {
    const before = knownWorlds.size + knownGuilds.size + knownPlayers.size;
    if (world) knownWorlds.add(world);
    if (guild) knownGuilds.add(guild);
    if (name && knownPlayers.size < 2000) knownPlayers.add(name);
    if (knownWorlds.size + knownGuilds.size + knownPlayers.size !== before) worldsChanged = true;
  }

  async function loadDeltas() {
    const q = new URLSearchParams({ limit: "200" });
    if (deltaWorld.value) q.set("world", deltaWorld.value);
    if (deltaGuild.value) q.set("guild", deltaGuild.value);
    const mine = ++deltaLoad;
    const res = await call("GET", "/api/deltas?" + q);
    if (mine !== deltaLoad) return;
    if (!res.ok) {
      deltaRows = [];
      showMsg(deltasMsg, missingEndpoint(res)
        ? "Deltas are not available: this server has no /api/deltas (404)."
        : "Cannot read the deltas: " + describe(res), "error");
    } else {
      const items = (res.body && res.body.items) || [];
      deltaRows = items.map((d) => ({
        world: d.world, guild: d.guild, name: d.name, delta: d.delta,
        update_time: d.update_time, t: parseTime(d.update_time) || 0, fresh: false,
      }));
      for (const d of deltaRows) learn(d.world, d.guild, d.name);
      showMsg(deltasMsg, deltaRows.length ? "" : "No deltas yet: they appear here as runs finish.", null);
    }
    deltasDirty = true;
    schedule();
  }

  function deltasIncoming(worker, batch) {
    const world = batch.world || worker;
    const items = Array.isArray(batch.items) ? batch.items : [];
    for (const d of items) learn(world, d.guild, d.name);
    if (deltaWorld.value && deltaWorld.value !== world) return;
    const fresh = items
      .filter((d) => !deltaGuild.value || d.guild === deltaGuild.value)
      .map((d) => ({
        world, guild: d.guild, name: d.name, delta: d.delta,
        update_time: batch.update_time, t: parseTime(batch.update_time) || 0, fresh: true,
      }));
    if (!fresh.length) return;
    for (const d of deltaRows) d.fresh = false;
    deltaRows = fresh.concat(deltaRows).slice(0, DELTAS_MAX);
    showMsg(deltasMsg, "", null);
    deltasDirty = true;
  }

  function nameButton(name) {
    const b = el("button", "name-link", name);
    b.type = "button";
    b.title = "Plot " + name;
    b.addEventListener("click", () => addToGraph(name));
    return b;
  }

  function renderDeltas() {
    const sorted = deltaRows.slice().sort((a, b) => b.t - a.t || b.delta - a.delta);
    const frag = document.createDocumentFragment();
    for (const d of sorted) {
      const tr = el("tr", d.fresh ? "flash" : null);
      tr.dataset.world = d.world;
      tr.dataset.guild = d.guild;
      tr.dataset.name = d.name;
      tr.dataset.delta = d.delta;
      tr.dataset.update = d.update_time;
      const upd = el("td", null, siteTime(d.update_time));
      upd.title = d.update_time;
      const who = el("td");
      who.appendChild(nameButton(d.name));
      tr.append(upd, el("td", null, d.world), el("td", null, d.guild), who,
        el("td", "num", (d.delta > 0 ? "+" : "") + fmtInt(d.delta)));
      frag.appendChild(tr);
    }
    deltasBody.textContent = "";
    deltasBody.appendChild(frag);
  }
  deltaWorld.addEventListener("change", loadDeltas);
  deltaGuild.addEventListener("change", loadDeltas);

  // ---------------------------------------------------------- top players
  const topForm = $("top-form");
  const topMsg = $("top-msg");
  const topList = $("top-list");
  const now0 = Date.now();
  $("top-from").value = toLocalInput(now0 - 24 * 3600 * 1000);
  $("top-to").value = toLocalInput(now0 + 60 * 1000);
  $("graph-from").value = toLocalInput(now0 - 7 * 24 * 3600 * 1000);
  $("graph-to").value = toLocalInput(now0 + 60 * 1000);

  async function loadTop() {
    const q = new URLSearchParams();
    const limit = Math.max(1, Math.min(100, Number($("top-limit").value) || 10));
    q.set("limit", String(limit));
    const from = localToRfc3339($("top-from").value);
    const to = localToRfc3339($("top-to").value);
    if (from) q.set("datetime1", from);
    if (to) q.set("datetime2", to);
    showMsg(topMsg, "Loading…");
    const res = await call("GET", "/api/top-players?" + q);
    topList.textContent = "";
    const panel = $("top-panel");
    if (!res.ok) {
      panel.dataset.state = missingEndpoint(res) ? "unavailable" : "error";
      showMsg(topMsg, missingEndpoint(res)
        ? "Top players are not available: this server has no /api/top-players (404)."
        : "Cannot read the top players: " + describe(res), "error");
      return;
    }
    const list = Array.isArray(res.body) ? res.body : (res.body && res.body.players) || [];
    panel.dataset.state = "ready";
    if (!list.length) {
      showMsg(topMsg, "No experience recorded in this period.", null);
      return;
    }
    showMsg(topMsg, "", null);
    const max = Math.max(1, ...list.map((p) => Number(p.total_exp) || 0));
    list.forEach((p, i) => {
      learn(null, null, p.name);
      const li = el("li");
      li.dataset.name = p.name;
      const bar = el("span", "bar");
      bar.style.width = Math.max(0.5, (100 * (Number(p.total_exp) || 0)) / max) + "%";
      const barWrap = el("span");
      barWrap.appendChild(bar);
      const name = el("span");
      name.appendChild(nameButton(p.name));
      li.append(el("span", "rank", String(i + 1)), name, barWrap, el("span", "num", fmtInt(p.total_exp)));
      topList.appendChild(li);
    });
    worldsChanged = true;
    schedule();
  }
  topForm.addEventListener("submit", (e) => {
    e.preventDefault();
    loadTop();
  });

  // ---------------------------------------------------------------- graph
  const graphForm = $("graph-form");
  const graphMsg = $("graph-msg");
  const graphNames = $("graph-names");
  const chartBox = $("graph-chart");
  const PALETTE = ["#0b5cad", "#c2410c", "#15803d", "#7e22ce", "#b91c1c", "#0e7490", "#a16207", "#be185d"];
  let chart = null;

  function addToGraph(name) {
    const names = graphNames.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (!names.includes(name)) names.push(name);
    graphNames.value = names.join(", ");
    plot();
    $("graph-panel").scrollIntoView({ behavior: "smooth", block: "nearest" });
  }
  function toSeconds(x) {
    if (typeof x === "number") return x > 1e11 ? x / 1000 : x;
    const t = parseTime(x);
    return t == null ? null : t / 1000;
  }
  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || "#888";
  }

  async function plot() {
    const names = graphNames.value.split(",").map((s) => s.trim()).filter(Boolean);
    if (!names.length) {
      showMsg(graphMsg, "Choose at least one player.", "error");
      return;
    }
    const body = { names };
    const from = localToRfc3339($("graph-from").value);
    const to = localToRfc3339($("graph-to").value);
    if (from) body.datetime1 = from;
    if (to) body.datetime2 = to;
    showMsg(graphMsg, "Loading…");
    const res = await call("POST", "/api/graph", body);
    const panel = $("graph-panel");
    const comparison = $("graph-comparison");
    if (!res.ok) {
      panel.dataset.state = missingEndpoint(res) ? "unavailable" : "error";
      showMsg(graphMsg, missingEndpoint(res)
        ? "The experience chart is not available: this server has no /api/graph (404)."
        : "Cannot plot: " + describe(res), "error");
      return;
    }
    panel.dataset.state = "ready";
    const figure = graphFigure(res.body);
    const drawn = drawChart(figure);
    showMsg(graphMsg, drawn ? "" : "No experience recorded for these players in this period.", null);
    renderComparison(comparison, (res.body && res.body.comparison) || []);
    renderStats((res.body && res.body.stats) || null);
  }
  graphForm.addEventListener("submit", (e) => {
    e.preventDefault();
    plot();
  });

  // worldpool's cumulative figure (`figure`, times with their offset); a
  // server that only has the replaced system's answer sends `graph`, a
  // Plotly figure as an object or as JSON text.
  function graphFigure(body) {
    if (!body) return {};
    if (body.figure && typeof body.figure === "object") return body.figure;
    if (typeof body.graph === "string") {
      try {
        return JSON.parse(body.graph);
      } catch (e) {
        return {};
      }
    }
    return body.graph || {};
  }

  // Plotly-style traces ({x, y, name}) drawn with uPlot on one time axis.
  function drawChart(figure) {
    if (chart) {
      chart.destroy();
      chart = null;
    }
    chartBox.textContent = "";
    const traces = Array.isArray(figure.data) ? figure.data : [];
    const xs = new Set();
    const series = traces.map((t) => {
      const m = new Map();
      const x = Array.isArray(t.x) ? t.x : [];
      const y = Array.isArray(t.y) ? t.y : [];
      x.forEach((xv, i) => {
        const s = toSeconds(xv);
        const v = y[i] == null ? null : Number(y[i]);
        if (s != null && v != null && !Number.isNaN(v)) {
          m.set(s, v);
          xs.add(s);
        }
      });
      return { name: t.name || "?", m };
    });
    if (!xs.size) return false;
    if (typeof window.uPlot !== "function") {
      chartBox.textContent = "The chart library did not load.";
      return true;
    }
    const X = [...xs].sort((a, b) => a - b);
    const data = [X].concat(series.map((s) => X.map((x) => (s.m.has(x) ? s.m.get(x) : null))));
    const fg = cssVar("--fg");
    const grid = cssVar("--line");
    const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
    const title = figure.layout && (typeof figure.layout.title === "string" ? figure.layout.title : figure.layout.title && figure.layout.title.text);
    const opts = {
      width: Math.max(280, chartBox.clientWidth || chartBox.parentElement.clientWidth - 20),
      height: 300,
      title: title || undefined,
      scales: { x: { time: true } },
      series: [{}].concat(series.map((s, i) => ({
        label: s.name,
        stroke: PALETTE[i % PALETTE.length],
        width: 2,
        spanGaps: true,
        points: { show: X.length < 60 },
        value: (u, v) => (v == null ? "—" : fmtInt(v)),
      }))),
      axes: [Object.assign({}, axis), Object.assign({ size: 56, values: (u, vals) => vals.map(shortNum) }, axis)],
    };
    chart = new window.uPlot(opts, data, chartBox);
    return true;
  }
  if (typeof ResizeObserver === "function") {
    new ResizeObserver(() => {
      if (chart) chart.setSize({ width: Math.max(280, chartBox.clientWidth), height: 300 });
    }).observe(chartBox);
  }

  function renderComparison(table, list) {
    const tb = table.tBodies[0];
    tb.textContent = "";
    table.hidden = !list.length;
    for (const c of list) {
      const tr = el("tr");
      tr.dataset.name = c.name;
      const pct = Number(c.percentile);
      tr.append(
        el("td", null, c.name),
        el("td", "num", (c.rank == null ? "—" : c.rank) + (c.total_players ? " / " + c.total_players : "")),
        el("td", "num", Number.isNaN(pct) ? "—" : pct.toFixed(1) + " %"),
        el("td", "num", fmtInt(c.total_exp_period)),
        el("td", "num", fmtInt(c.current_total_exp)),
      );
      tb.appendChild(tr);
    }
  }
  function renderStats(stats) {
    const dl = $("graph-stats");
    dl.textContent = "";
    if (!stats || typeof stats !== "object") return;
    for (const [k, v] of Object.entries(stats).slice(0, 40)) {
      let text;
      if (v == null) text = "—";
      else if (typeof v === "number") text = fmtInt(v);
      else if (typeof v === "object") text = JSON.stringify(v).slice(0, 200);
      else text = String(v);
      dl.append(el("dt", null, k.replace(/_/g, " ")), el("dd", null, text));
    }
  }

  // --------------------------------------------------------------- cluster
  // Shown only on a cluster node (/api/cluster answers 200); refreshed
  // every 2 s and on the cluster's events.
  let clusterTimer = null;
  async function loadCluster() {
    clearTimeout(clusterTimer);
    let r;
    try {
      r = await fetch("/api/cluster", { headers: { Accept: "application/json" } });
    } catch (_) {
      clusterTimer = setTimeout(loadCluster, 5000);
      return;
    }
    if (r.status === 404) return; // an older server
    if (!r.ok) {
      clusterTimer = setTimeout(loadCluster, 5000);
      return;
    }
    let v;
    try {
      v = await r.json();
    } catch (_) {
      return;
    }
    if (v.state === "off") return; // not a cluster node
    renderCluster(v);
    clusterTimer = setTimeout(loadCluster, 2000);
  }
  function renderCluster(v) {
    $("cluster-panel").hidden = false;
    const b = v.balance || {};
    const me = (v.this_node || {}).node_id;
    setText($("cluster-summary"),
      (v.state === "alarm" ? "ALARM: " + (v.alarms || []).join(", ") + " without an owner · " : v.state + " · ") +
      b.nodes + " nodes · " + b.owned + "/" + b.worlds + " worlds owned · spread " + b.spread);
    $("cluster-summary").dataset.state = v.state;
    const nodes = $("cluster-nodes").tBodies[0];
    nodes.textContent = "";
    for (const n of v.nodes || []) {
      const tr = el("tr");
      if (n.node_id === me) tr.className = "me";
      tr.append(el("td", null, n.node_name + (n.node_id === me ? " (this node)" : "")), el("td", null, n.node_id),
        el("td", "num", String(n.worlds_held)), el("td", null, rel(parseTime(n.renewed_at))));
      nodes.appendChild(tr);
    }
    const leases = $("cluster-leases").tBodies[0];
    leases.textContent = "";
    for (const l of v.leases || []) {
      const tr = el("tr");
      if (l.alarm) tr.className = "alarm";
      const state = l.alarm ? "no owner for " + fmtDur(l.unowned_for_s || 0) : l.live ? "held" : "free";
      tr.append(el("td", null, l.world), el("td", null, l.owner_name || "—"), el("td", "num", String(l.epoch)), el("td", null, state));
      leases.appendChild(tr);
    }
  }

  // ----------------------------------------------------------------- start
  loadCluster();
  connect();
  loadDeltas();
  loadTop();
})();
