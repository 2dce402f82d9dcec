// The ingot daemon's web page: polls /ui/state, draws it, and streams chats through /api/chat.
// Plain browser JavaScript, no libraries: it must work offline, served as it is by the daemon.
"use strict";

const POLL_MS = 2000;
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2"];
const TOKEN_KEY = "ingot-token";

const $ = (id) => document.getElementById(id);
const state = { messages: [], controller: null, model: null, polling: null };

// ---- talking to the daemon ---------------------------------------------------------------------

function headers(extra) {
  const h = Object.assign({}, extra || {});
  const token = sessionStorage.getItem(TOKEN_KEY);
  if (token) h["Authorization"] = "Bearer " + token;
  return h;
}

async function api(path, options) {
  const reply = await fetch(path, Object.assign({}, options || {}, { headers: headers((options || {}).headers) }));
  if (reply.status === 401) {
    $("token-form").hidden = false;
    throw new Error("this daemon wants its token");
  }
  return reply;
}

// ---- formatting ------------------------------------------------------------------------------------

function size(bytes) {
  if (bytes === null || bytes === undefined) return "–";
  const n = Number(bytes);
  if (n < 1024 * 1024) return (n / 1024).toFixed(0) + " KiB";
  if (n < 1024 ** 3) return (n / 1024 ** 2).toFixed(0) + " MiB";
  return (n / 1024 ** 3).toFixed(1) + " GiB";
}

function percent(ratio) { return ratio === null || ratio === undefined ? "–" : Math.round(ratio * 100) + "%"; }

function processor(m) {
  const total = Number(m.size_bytes), gpu = Number(m.vram_bytes);
  if (!total || !gpu) return "100% CPU";
  const share = Math.round(100 * gpu / total);
  return share >= 100 ? "100% GPU" : (100 - share) + "%/" + share + "% CPU/GPU";
}

function keepAliveLeft(m, now) {
  if (m.state === "MODEL_STATE_LOADING") return "loading…";
  if (m.state === "MODEL_STATE_WAITING") return "waiting for room";
  if (m.state === "MODEL_STATE_UNLOADING") return "stopping…";
  if (m.keep_forever) return "forever";
  if (!m.expires_at) return "in use";
  const seconds = Math.max(0, Math.round(Date.parse(m.expires_at) / 1000 - now));
  return seconds >= 60 ? Math.floor(seconds / 60) + " min " + (seconds % 60) + " s" : seconds + " s";
}

function queued(m) {
  const q = m.queue || {};
  const interactive = Math.max(0, (q.admitted_interactive || 0) - (q.running_interactive || 0));
  const batch = Math.max(0, (q.admitted_batch || 0) - (q.running_batch || 0));
  return batch ? interactive + " + " + batch + " batch" : String(interactive);
}

function cell(row, text, numeric) {
  const td = document.createElement("td");
  td.textContent = text;
  if (numeric) td.className = "num";
  row.appendChild(td);
  return td;
}

function fill(tbody, items, build) {
  tbody.replaceChildren();
  for (const item of items) {
    const row = document.createElement("tr");
    build(row, item);
    tbody.appendChild(row);
  }
}

// ---- drawing the state ---------------------------------------------------------------------------

function render(s) {
  $("updated").textContent = "updated " + new Date(s.time * 1000).toLocaleTimeString();
  fill($("loaded").tBodies[0], s.loaded, (row, m) => {
    row.dataset.model = m.name;
    cell(row, m.name);
    cell(row, size(m.size_bytes), true);
    cell(row, processor(m));
    cell(row, (m.devices || []).map((d) => d.device + " " + size(d.bytes)).join(", ") || "–");
    cell(row, String(m.active_requests || 0), true);
    cell(row, queued(m), true);
    cell(row, Number(m.tokens_per_second || 0).toFixed(1), true);
    cell(row, keepAliveLeft(m, s.time));
  });
  $("loaded-empty").hidden = s.loaded.length > 0;
  fill($("models").tBodies[0], s.models, (row, m) => {
    row.dataset.model = m.name;
    cell(row, m.name);
    cell(row, (m.digest || "").replace("sha256:", "").slice(0, 12));
    cell(row, size(m.size), true);
    cell(row, (m.details || {}).family || "");
    cell(row, (m.details || {}).quantization_level || "");
  });
  fill($("devices").tBodies[0], s.devices, (row, d) => {
    row.dataset.device = d.key;
    cell(row, d.key);
    cell(row, d.name);
    cell(row, percent(d.utilization), true);
    cell(row, (d.memory_used_bytes === null ? "?" : size(d.memory_used_bytes)) + " / " + size(d.memory_total_bytes), true);
    cell(row, d.temperature_celsius === null ? "–" : Math.round(d.temperature_celsius) + " °C", true);
    cell(row, d.power_watts === null ? "–" : Math.round(d.power_watts) + " W", true);
    cell(row, d.models.map((m) => m.model + " " + (m.measured ? "" : "~") + size(m.bytes)).join(", ") || "–");
  });
  renderModelChoice(s.models);
  renderChart(s.tokens_per_second);
  renderWatch(s.watch);
}

function renderModelChoice(models) {
  const select = $("chat-model");
  const names = models.map((m) => m.name);
  const current = select.value || state.model;
  if (select.options.length === names.length && names.every((n, i) => select.options[i].value === n)) return;
  select.replaceChildren(...names.map((n) => new Option(n, n)));
  if (names.includes(current)) select.value = current;
}

function renderChart(rates) {
  const canvas = $("chart");
  const ctx = canvas.getContext("2d");
  const w = canvas.width, h = canvas.height, pad = 28;
  ctx.clearRect(0, 0, w, h);
  const series = Object.entries(rates.series);
  const top = Math.max(1, ...series.flatMap(([, values]) => values));
  ctx.strokeStyle = "#e3e6ec";
  ctx.fillStyle = "#6b7280";
  ctx.font = "11px sans-serif";
  for (const fraction of [0, 0.5, 1]) {
    const y = h - pad + (pad * 2 - h) * fraction;
    ctx.beginPath(); ctx.moveTo(pad, y); ctx.lineTo(w - 4, y); ctx.stroke();
    ctx.fillText((top * fraction).toFixed(top < 10 ? 1 : 0), 2, y + 4);
  }
  const legend = $("chart-legend");
  legend.replaceChildren();
  series.forEach(([model, values], i) => {
    const color = COLORS[i % COLORS.length];
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.beginPath();
    values.forEach((v, j) => {
      const x = pad + (w - pad - 4) * j / Math.max(1, values.length - 1);
      const y = h - pad - (h - pad * 2) * v / top;
      if (j === 0) ctx.moveTo(x, y); else ctx.lineTo(x, y);
    });
    ctx.stroke();
    const entry = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = color;
    entry.append(swatch, model);
    legend.appendChild(entry);
  });
  if (!series.length) legend.textContent = "No tokens generated in the last 10 minutes.";
}

function renderWatch(folders) {
  const box = $("watch");
  box.replaceChildren();
  if (!folders.length) {
    const p = document.createElement("p");
    p.className = "muted";
    p.textContent = "No folder is watched.";
    box.appendChild(p);
    return;
  }
  for (const f of folders) {
    const head = document.createElement("p");
    head.textContent = f.root + " — " + (f.running ? "running" : "not running") + (f.in_daemon ? " (in this daemon)" : "")
      + (f.updated_at ? ", last pass " + f.updated_at : "");
    box.appendChild(head);
    const table = document.createElement("table");
    const body = document.createElement("tbody");
    table.appendChild(body);
    fill(body, f.models, (row, m) => {
      cell(row, m.key);
      cell(row, (m.digest || "").replace("sha256:", "").slice(0, 12) || "–");
      cell(row, m.last_build_result || "–");
      const problems = (m.problems || []).map((p) => p.message).join("; ");
      const td = cell(row, problems || "ok");
      if (problems) td.className = "problem";
    });
    box.appendChild(table);
  }
}

async function poll() {
  try {
    const reply = await api("/ui/state");
    if (reply.ok) render(await reply.json());
  } catch (error) {
    $("updated").textContent = String(error.message || error);
  }
}

// ---- chat ------------------------------------------------------------------------------------------

function chatStatus(stateName, text) {
  const status = $("chat-status");
  status.dataset.state = stateName;
  status.textContent = text;
}

function addMessage(role, text) {
  const div = document.createElement("div");
  div.className = "msg " + role;
  div.textContent = text;
  $("chat-log").appendChild(div);
  return div;
}

async function send(event) {
  event.preventDefault();
  const text = $("chat-input").value.trim();
  const model = $("chat-model").value;
  if (!text || !model || state.controller) return;
  if (model !== state.model) { state.messages = []; state.model = model; }
  $("chat-input").value = "";
  addMessage("user", text);
  state.messages.push({ role: "user", content: text });
  const answer = addMessage("assistant", "");
  answer.id = "chat-answer";
  document.querySelectorAll(".msg.assistant").forEach((m) => { if (m !== answer) m.removeAttribute("id"); });
  state.controller = new AbortController();
  $("chat-send").disabled = true;
  $("chat-stop").disabled = false;
  chatStatus("streaming", "answering…");
  let reason = "";
  try {
    // The daemon applies the model's SYSTEM, TEMPLATE and PARAMETERs, as for any client.
    const reply = await api("/api/chat", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ model: model, messages: state.messages, stream: true }),
      signal: state.controller.signal,
    });
    if (!reply.ok) {
      const body = await reply.json().catch(() => ({}));
      throw new Error(body.error || reply.statusText);
    }
    const reader = reply.body.getReader();
    const decoder = new TextDecoder();
    let buffered = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffered += decoder.decode(value, { stream: true });
      let newline;
      while ((newline = buffered.indexOf("\n")) >= 0) {
        const line = buffered.slice(0, newline).trim();
        buffered = buffered.slice(newline + 1);
        if (!line) continue;
        const piece = JSON.parse(line);
        if (piece.error) throw new Error(piece.error);
        if (piece.message && piece.message.content) answer.textContent += piece.message.content;
        if (piece.done) reason = piece.done_reason || "stop";
      }
      $("chat-log").scrollTop = $("chat-log").scrollHeight;
    }
    state.messages.push({ role: "assistant", content: answer.textContent });
    chatStatus("done", "done (" + reason + ")");
  } catch (error) {
    if (error.name === "AbortError") {
      state.messages.pop();  // the question stays on screen; the next one starts from the answered turns
      chatStatus("stopped", "stopped");
    } else {
      chatStatus("error", String(error.message || error));
    }
  } finally {
    state.controller = null;
    $("chat-send").disabled = false;
    $("chat-stop").disabled = true;
  }
}

function stop() {
  if (state.controller) state.controller.abort();  // closing the stream cancels the request in the daemon
}

function reset() {
  stop();
  state.messages = [];
  $("chat-log").replaceChildren();
  chatStatus("idle", "");
}

// ---- start -------------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("chat-form").addEventListener("submit", send);
  $("chat-stop").addEventListener("click", stop);
  $("chat-reset").addEventListener("click", reset);
  $("chat-input").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); $("chat-form").requestSubmit(); }
  });
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value);
    $("token-form").hidden = true;
    poll();
  });
  poll();
  state.polling = setInterval(poll, POLL_MS);
});
