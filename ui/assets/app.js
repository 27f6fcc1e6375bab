// The dashboard: hash-routed pages over /api, live data from /api/events.
import { lineChart } from "./charts.js";

const PROFILES = ["moe_native", "moe_reasoning", "moe_orchestrated"];
const page = document.getElementById("page");
const live = document.getElementById("live");
const state = { samples: [], overview: null, traces: [] };

// ---- helpers -------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value == null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "text") node.textContent = value;
    else node.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child == null) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, { method = "GET", body } = {}) {
  // Every change carries a JSON body: the gateway refuses changes that are not JSON (CSRF).
  if (method !== "GET" && body === undefined) body = {};
  const response = await fetch(path, {
    method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json().catch(() => null);
  if (!response.ok) throw new ApiError(response.status, data?.error?.message ?? `HTTP ${response.status}`);
  return data;
}

function toast(message, error = false) {
  const box = document.getElementById("toast");
  box.textContent = message;
  box.className = error ? "error" : "";
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => { box.hidden = true; }, 6000);
}

const bytes = (n) => {
  if (n == null) return "not available";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
};
const percent = (v) => (v == null ? "—" : `${v.toFixed(0)} %`);
const time = (ms) => (ms ? new Date(ms).toLocaleTimeString() : "—");
const date = (s) => (s ? new Date(s * 1000).toLocaleString() : "—");
const ms = (v) => (v == null ? "—" : v >= 10000 ? `${(v / 1000).toFixed(1)} s` : `${v} ms`);

function failure(error) {
  const text = error instanceof ApiError && error.status === 401
    ? "Your dashboard session has ended. Run `moe-sovereign ui` for a new login link."
    : error.message;
  page.replaceChildren(el("p", { class: "error", role: "alert", text }));
}

// ---- live feed -----------------------------------------------------------------------------

function connect() {
  const events = new EventSource("/api/events");
  events.onopen = () => { live.textContent = "live"; live.className = "live on"; };
  events.onerror = () => { live.textContent = "reconnecting…"; live.className = "live off"; };
  events.addEventListener("telemetry", (e) => {
    const sample = JSON.parse(e.data);
    state.samples.push(sample);
    const horizon = Date.now() - 300_000;
    while (state.samples.length && state.samples[0].at_ms < horizon) state.samples.shift();
    if (route() === "dashboard") updateDashboard();
  });
  events.addEventListener("trace", (e) => {
    const trace = JSON.parse(e.data);
    state.traces.unshift(trace);
    state.traces.length = Math.min(state.traces.length, 1000);
    if (route() === "requests") renderTraceRows();
    if (route() === "dashboard") refreshOverview();
  });
  events.addEventListener("wiring", (e) => {
    const event = JSON.parse(e.data);
    toast(`Wiring: ${event.message}`, event.attention);
    if (route() === "wiring") show();
  });
  events.addEventListener("model", (e) => {
    const event = JSON.parse(e.data);
    if (event.state !== "pulling") toast(`Model ${event.name}: ${event.state}${event.detail ? ` — ${event.detail}` : ""}`, event.state === "failed");
    onModelEvent(event);
  });
}

// ---- dashboard -----------------------------------------------------------------------------

async function refreshOverview() {
  try {
    state.overview = await api("/api/overview");
    if (!state.samples.length) state.samples = state.overview.telemetry.history;
    updateDashboard();
  } catch (error) { failure(error); }
}

async function dashboard() {
  page.replaceChildren(
    el("h1", { text: "Dashboard" }),
    el("div", { class: "grid" },
      el("section", { class: "card", "aria-labelledby": "cpu-title" },
        el("h2", { id: "cpu-title", text: "CPU" }),
        el("div", { class: "big", id: "cpu-now", text: "—" }),
        el("div", { class: "hint", id: "cpu-cores" }),
        el("canvas", { class: "chart", id: "cpu-chart", role: "img", "aria-label": "CPU use, last 5 minutes" })),
      el("section", { class: "card", "aria-labelledby": "ram-title" },
        el("h2", { id: "ram-title", text: "Memory" }),
        el("div", { class: "big", id: "ram-now", text: "—" }),
        el("div", { class: "hint", id: "ram-detail" }),
        el("canvas", { class: "chart", id: "ram-chart", role: "img", "aria-label": "Memory use, last 5 minutes" }),
        el("div", { class: "legend" }, el("span", { class: "s1", text: "system used" }), el("span", { class: "s2", text: "MoE Sovereign" }))),
      el("section", { class: "card", "aria-labelledby": "gpu-title" },
        el("h2", { id: "gpu-title", text: "GPU" }),
        el("div", { id: "gpus", text: "—" })),
      el("section", { class: "card", "aria-labelledby": "gw-title" },
        el("h2", { id: "gw-title", text: "Gateway" }),
        el("div", { class: "stats", id: "gateway-stats" })),
      el("section", { class: "card", "aria-labelledby": "models-title" },
        el("h2", { id: "models-title", text: "Resident models" }),
        el("div", { id: "resident", text: "—" }))),
  );
  await refreshOverview();
  try {
    const models = await api("/api/models");
    const resident = (models.data ?? []).filter((m) => m.resident);
    document.getElementById("resident")?.replaceChildren(
      resident.length
        ? el("ul", {}, resident.map((m) => el("li", {}, `${m.name} — ${bytes(m.size_bytes)}`)))
        : el("span", { class: "muted", text: `none loaded (${(models.data ?? []).length} registered; a model loads on its first request)` }));
  } catch (error) { toast(error.message, true); }
}

function updateDashboard() {
  const cpu = document.getElementById("cpu-now");
  if (!cpu) return;
  const latest = state.samples.at(-1);
  if (latest) {
    cpu.textContent = percent(latest.cpu_percent);
    document.getElementById("cpu-cores").textContent = latest.cpu_per_core.length
      ? `per core: ${latest.cpu_per_core.map((v) => v.toFixed(0)).join(" · ")} % — MoE Sovereign ${percent(latest.process_cpu_percent)} of a core`
      : "measuring…";
    document.getElementById("ram-now").textContent = `${bytes(latest.memory_used)} of ${bytes(latest.memory_total)}`;
    document.getElementById("ram-detail").textContent = `${bytes(latest.memory_available)} available · MoE Sovereign ${bytes(latest.process_rss)}`;
    const gpus = document.getElementById("gpus");
    gpus.replaceChildren(...(latest.gpus.length
      ? latest.gpus.map((gpu, i) => el("div", {},
          el("div", {}, el("b", { text: gpu.name })),
          el("div", { text: `busy ${gpu.utilization_percent == null ? "not available" : percent(gpu.utilization_percent)} · memory ${gpu.memory_used == null ? "not available" : bytes(gpu.memory_used)} of ${bytes(gpu.memory_total)}` }),
          el("canvas", { class: "chart", id: `gpu-chart-${i}`, role: "img", "aria-label": `${gpu.name} use, last 5 minutes` })))
      : [el("span", { class: "muted", text: "no GPU found" })]));
  }
  const points = (f) => state.samples.map((s) => [s.at_ms, f(s)]);
  lineChart(document.getElementById("cpu-chart"), [{ points: points((s) => s.cpu_percent), color: "--c1" }], { max: 100, format: (v) => `${v.toFixed(0)}%` });
  const total = latest?.memory_total || 1;
  lineChart(document.getElementById("ram-chart"), [
    { points: points((s) => s.memory_used), color: "--c1" },
    { points: points((s) => s.process_rss), color: "--c2" },
  ], { max: total, format: (v) => bytes(v).replace(/\.\d /, " ") });
  (latest?.gpus ?? []).forEach((gpu, i) => {
    const canvas = document.getElementById(`gpu-chart-${i}`);
    if (canvas) lineChart(canvas, [
      { points: points((s) => s.gpus[i]?.utilization_percent), color: "--c1" },
      { points: points((s) => (s.gpus[i]?.memory_total ? (100 * s.gpus[i].memory_used) / s.gpus[i].memory_total : null)), color: "--c2" },
    ], { max: 100, format: (v) => `${v.toFixed(0)}%` });
  });
  const gateway = state.overview?.gateway;
  if (gateway) {
    const stat = (label, value) => el("div", {}, el("span", { class: "hint", text: label }), el("b", { text: value }));
    document.getElementById("gateway-stats").replaceChildren(
      stat("requests / min", gateway.requests_last_minute),
      stat("tokens / s", (gateway.output_tokens_last_minute / 60).toFixed(1)),
      stat("open streams", gateway.in_flight),
      stat("queued", gateway.queued),
      stat("address", `127.0.0.1:${gateway.port}`),
      stat("version", gateway.version));
  }
}

// ---- requests ------------------------------------------------------------------------------

const filters = { key: "", profile: "", status: "" };

async function requests() {
  const input = (name, label, control) => {
    control.id = `filter-${name}`;
    control.value = filters[name];
    control.addEventListener("input", () => { filters[name] = control.value; loadTraces(); });
    return el("label", { for: control.id }, label, control);
  };
  page.replaceChildren(
    el("h1", { text: "Requests" }),
    el("div", { class: "filters" },
      input("key", "Key (id or name)", el("input", { type: "search", placeholder: "any" })),
      input("profile", "Profile", el("select", {}, el("option", { value: "", text: "any" }), PROFILES.map((p) => el("option", { value: p, text: p })))),
      input("status", "Status", el("select", {}, ["", "ok", "error"].map((s) => el("option", { value: s, text: s || "any" }))))),
    el("div", { class: "table-wrap" },
      el("table", { "aria-label": "Requests, newest first" },
        el("thead", {}, el("tr", {}, ["time", "key", "profile", "expert", "model", "input", "output", "cached", "first token", "duration", "tok/s", "status", "stop"].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", { id: "trace-rows" }))),
    el("p", { class: "hint", text: "The last 1000 requests since the gateway started. No prompt or answer text is ever kept." }));
  await loadTraces();
}

async function loadTraces() {
  const query = new URLSearchParams(Object.entries(filters).filter(([, v]) => v));
  try {
    state.traces = (await api(`/api/requests?${query}`)).data;
    renderTraceRows();
  } catch (error) { failure(error); }
}

function matches(t) {
  if (filters.key && t.key_id !== filters.key && t.key_name !== filters.key) return false;
  if (filters.profile && t.profile !== filters.profile) return false;
  const ok = !t.error_type && t.status < 400;
  if (filters.status === "ok" && !ok) return false;
  if (filters.status === "error" && ok) return false;
  return true;
}

function renderTraceRows() {
  const body = document.getElementById("trace-rows");
  if (!body) return;
  const rows = state.traces.filter(matches).slice(0, 200);
  body.replaceChildren(...(rows.length ? rows.map((t) => el("tr", { "data-trace": t.id },
    el("td", { text: time(t.at_ms) }),
    el("td", { text: t.key_name || t.key_id }),
    el("td", { text: t.profile }),
    el("td", { title: (t.steps ?? []).map((s) => `${s.stage} · ${s.expert} · ${s.outcome} · ${ms(s.ms)}`).join("\n") },
      t.expert || "—",
      ...(t.steps ?? []).filter((s) => s.stage === "fallback").map((s) => el("div", { class: "muted", text: `skipped ${s.expert} (${ms(s.ms)})` }))),
    el("td", { text: t.model }),
    el("td", { class: "input-tokens", text: t.input_tokens }),
    el("td", { class: "output-tokens", text: t.output_tokens }),
    el("td", { text: t.cache_read_tokens || "—" }),
    el("td", { text: ms(t.ttft_ms) }),
    el("td", { text: ms(t.duration_ms) }),
    el("td", { text: t.tokens_per_s == null ? "—" : t.tokens_per_s.toFixed(1) }),
    el("td", { class: t.error_type ? "bad" : "ok", text: t.error_type ? `${t.status} ${t.error_type}` : t.status }),
    el("td", { text: t.stop_reason ?? "—" })))
    : [el("tr", {}, el("td", { colspan: 13, class: "muted", text: "No requests yet." }))]));
}

// ---- profiles ------------------------------------------------------------------------------

async function profiles() {
  try {
    const keys = (await api("/api/keys")).data;
    const chosen = new URLSearchParams(location.hash.split("?")[1]).get("key")
      ?? keys.find((k) => k.default)?.id ?? keys[0]?.id;
    const rows = chosen ? await api(`/api/profiles?key=${encodeURIComponent(chosen)}`) : [];
    const select = el("select", { id: "profile-key" }, keys.map((k) =>
      el("option", { value: k.id, selected: k.id === chosen, text: `${k.name} (${k.id})${k.default ? " — default" : ""}` })));
    select.addEventListener("change", () => { location.hash = `#/profiles?key=${encodeURIComponent(select.value)}`; });
    const group = el("fieldset", {}, el("legend", { text: "Active profile" }),
      rows.map((row) => {
        const id = `profile-${row.profile}`;
        const radio = el("input", { type: "radio", name: "profile", id, value: row.profile, checked: row.active });
        radio.addEventListener("change", async () => {
          try {
            await api(`/api/keys/${encodeURIComponent(chosen)}/profile`, { method: "PUT", body: { profile: row.profile } });
            toast(`${chosen} now uses ${row.profile}`);
          } catch (error) { toast(error.message, true); show(); }
        });
        return el("label", { class: "radio", for: id }, radio,
          el("span", {}, el("b", { text: row.profile }), " ",
            el("span", { class: "muted", text: `${row.model_id} · expert: ${[row.expert ?? "the first registered model", ...(row.fallbacks ?? [])].join(", then ")}` })));
      }));
    const [{ data: experts }, { data: models }] = await Promise.all([api("/api/experts"), api("/api/models")]);
    page.replaceChildren(el("h1", { text: "Profiles" }),
      keys.length ? el("label", { for: "profile-key" }, "Key", select) : el("p", { text: "No keys yet: create one on the Keys page." }),
      keys.length ? group : null,
      el("p", { class: "hint", text: "A key's profile picks how its requests are answered. Changes apply at once, also to a running Claude." }),
      el("h2", { text: "What answers each profile" }),
      el("div", { class: "grid" }, PROFILES.map((p) => bindForm(p, rows.find((r) => r.profile === p)?.expert, experts, models))),
      el("p", { class: "hint", text: "Saved to config.toml (comments and order kept, the old file backed up) and in force at once." }));
  } catch (error) { failure(error); }
}

function bindForm(profile, current, experts, models) {
  const id = (what) => `bind-${profile}-${what}`;
  const choice = el("select", { id: id("choice") },
    experts.map((e) => el("option", { value: `expert:${e.name}`, selected: e.name === current, text: `expert ${e.name} (${e.kind}${e.model ? `, ${e.model}` : ""})` })),
    models.filter((m) => !experts.some((e) => e.kind === "local" && e.model === m.name))
      .map((m) => el("option", { value: `model:${m.name}`, text: `model ${m.name} (on this machine)` })),
    el("option", { value: "remote", text: "a model server…" }));
  const kind = el("select", { id: id("kind") }, el("option", { value: "openai", text: "OpenAI-compatible (vLLM, llama.cpp, Ollama…)" }), el("option", { value: "anthropic", text: "Anthropic-compatible" }));
  const url = el("input", { id: id("url"), type: "url", placeholder: "http://127.0.0.1:8080/v1" });
  const model = el("input", { id: id("model"), placeholder: "optional" });
  const remote = el("div", { class: "filters", hidden: true },
    el("label", { for: id("kind") }, "Kind", kind), el("label", { for: id("url") }, "URL", url), el("label", { for: id("model") }, "Model", model));
  choice.addEventListener("change", () => { remote.hidden = choice.value !== "remote"; });
  const form = el("form", { class: "card", "aria-label": `What answers ${profile}` },
    el("h2", { text: profile }), el("p", { class: "muted", text: `now: ${current ?? "the first registered model"}` }),
    el("label", { for: id("choice") }, `Answer ${profile} with`, choice), remote,
    el("button", { class: "primary", type: "submit", text: `Use for ${profile}` }));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const [what, name] = [choice.value.split(":")[0], choice.value.slice(choice.value.indexOf(":") + 1)];
    const body = what === "expert" ? { expert: name } : what === "model" ? { model: name }
      : { kind: kind.value, base_url: url.value, model: model.value || null };
    try {
      const result = await api(`/api/profiles/${profile}`, { method: "PUT", body });
      toast(`${profile} is now answered by ${result.expert}.`);
      show();
    } catch (error) { toast(error.message, true); }
  });
  return form;
}

// ---- keys ----------------------------------------------------------------------------------

async function keys() {
  try {
    const list = (await api("/api/keys")).data;
    const name = el("input", { id: "key-name", placeholder: "e.g. laptop", autocomplete: "off" });
    const profile = el("select", { id: "key-profile" }, PROFILES.map((p) => el("option", { value: p, text: p })));
    const created = el("div", { id: "created-key" });
    const form = el("form", { class: "filters", "aria-label": "Create a key" },
      el("label", { for: "key-name" }, "Name", name),
      el("label", { for: "key-profile" }, "Profile", profile),
      el("button", { class: "primary", type: "submit", text: "Create key" }));
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      try {
        const key = await api("/api/keys", { method: "POST", body: { name: name.value || null, profile: profile.value } });
        await keys();
        const copy = el("button", { type: "button", text: "Copy" });
        copy.addEventListener("click", async () => {
          await navigator.clipboard.writeText(key.key).then(() => toast("Copied."), () => toast("Copy failed: select the key and copy it.", true));
        });
        document.getElementById("created-key").replaceChildren(el("div", { class: "card secret", role: "status" },
          el("span", { text: `Key ${key.id} created. It is shown this once:` }), el("code", { id: "new-key-value", text: key.key }), copy));
      } catch (error) { toast(error.message, true); }
    });
    page.replaceChildren(el("h1", { text: "Keys" }), form, created,
      el("div", { class: "table-wrap" }, el("table", { "aria-label": "Keys" },
        el("thead", {}, el("tr", {}, ["name", "id", "profile", "created", "last used", ""].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, list.length ? list.map((k) => {
          const revoke = el("button", { class: "danger", type: "button", "aria-label": `Revoke ${k.name} (${k.id})`, text: "Revoke" });
          revoke.addEventListener("click", async () => {
            if (!confirm(`Revoke ${k.name} (${k.id})? Anything using it stops working at once.`)) return;
            try { await api(`/api/keys/${encodeURIComponent(k.id)}`, { method: "DELETE" }); toast(`${k.id} revoked`); keys(); }
            catch (error) { toast(error.message, true); }
          });
          return el("tr", { "data-key": k.id },
            el("td", { text: `${k.name}${k.default ? " (default)" : ""}` }), el("td", { text: k.id }), el("td", { text: k.profile }),
            el("td", { text: date(k.created_at) }), el("td", { text: k.last_used_ms ? time(k.last_used_ms) : "not since start" }), el("td", {}, revoke));
        }) : el("tr", {}, el("td", { colspan: 6, class: "muted", text: "No keys yet." }))))),
      el("p", { class: "hint", text: "Key values live in your OS keychain; this page never shows one again after it is created." }));
  } catch (error) { failure(error); }
}

// ---- models, wiring, doctor ----------------------------------------------------------------

const pulls = new Map(); // repo → { done, total, detail }

async function models() {
  try {
    const { data, memory_budget_bytes: budget, recommended, can_pick: canPick } = await api("/api/models");
    const path = el("input", { id: "model-path", placeholder: "/path/to/model.gguf", autocomplete: "off", size: 40 });
    const add = el("form", { class: "filters", "aria-label": "Add a model file" },
      el("label", { for: "model-path" }, "GGUF file on this machine", path),
      el("button", { type: "submit", text: "Add" }));
    add.addEventListener("submit", async (event) => {
      event.preventDefault();
      try { const m = await api("/api/models", { method: "POST", body: { path: path.value } }); toast(`Added ${m.name}.`); models(); }
      catch (error) { toast(error.message, true); }
    });
    if (canPick) {
      const pick = el("button", { type: "button", id: "pick-model", text: "Choose a file…" });
      pick.addEventListener("click", async () => {
        try { const m = await api("/api/models/pick", { method: "POST" }); if (m.picked) { toast(`Added ${m.name}.`); models(); } }
        catch (error) { toast(error.message, true); }
      });
      add.append(pick);
    }
    const pull = recommended ? el("div", { class: "card" },
      el("h2", { text: "Recommended for this machine" }),
      el("p", {}, el("b", { text: recommended.title }), el("br"),
        `${recommended.repo} · ${bytes(recommended.size_bytes)} · ${recommended.context_length.toLocaleString()} tokens of context`),
      pullControl(recommended.repo, recommended.file)) : null;
    page.replaceChildren(el("h1", { text: "Models" }),
      el("div", { class: "table-wrap" }, el("table", { "aria-label": "Registered models" },
        el("thead", {}, el("tr", {}, ["name", "architecture", "quantisation", "size", "context", "state", ""].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, data.length ? data.map((m) => {
          const remove = el("button", { class: "danger", type: "button", "aria-label": `Remove ${m.name}`, text: "Remove" });
          remove.addEventListener("click", async () => {
            if (!confirm(`Remove ${m.name} from the registry? The file stays where it is.`)) return;
            try { await api(`/api/models/${encodeURIComponent(m.name)}`, { method: "DELETE" }); models(); }
            catch (error) { toast(error.message, true); }
          });
          const action = m.resident ? "unload" : "load";
          const toggle = el("button", { type: "button", "aria-label": `${m.resident ? "Unload" : "Load"} ${m.name}`, text: m.resident ? "Unload" : "Load" });
          toggle.addEventListener("click", async () => {
            toggle.disabled = true;
            toggle.textContent = m.resident ? "Unloading…" : "Loading…";
            try { await api(`/api/models/${encodeURIComponent(m.name)}/${action}`, { method: "POST" }); }
            catch (error) { toast(error.message, true); }
            models();
          });
          return el("tr", { "data-model": m.name },
            el("td", { text: m.name }), el("td", { text: m.architecture ?? "—" }), el("td", { text: m.quantization ?? "—" }),
            el("td", { text: bytes(m.size_bytes) }), el("td", { text: m.context_length ?? "—" }),
            el("td", { class: m.resident ? "ok model-state" : "muted model-state", text: m.resident ? "loaded" : "on disk" }),
            el("td", {}, toggle, " ", remove));
        }) : el("tr", {}, el("td", { colspan: 7, class: "muted", text: "No model yet: add a file or pull the recommended one." }))))),
      el("p", { class: "hint", text: budget ? `Memory budget for loaded models: ${bytes(budget)}. A model loads on its first request and unloads when idle.` : "No memory budget set." }),
      add, pull);
  } catch (error) { failure(error); }
}

function pullControl(repo, file) {
  const bar = el("progress", { id: "pull-progress", max: 100, value: 0, "aria-label": `Download of ${repo}`, hidden: !pulls.has(repo) });
  const status = el("span", { id: "pull-status", role: "status" });
  const button = el("button", { class: "primary", type: "button", text: "Download" });
  const render = () => {
    const p = pulls.get(repo);
    if (!p) return;
    bar.hidden = false;
    if (p.total) bar.value = Math.floor((100 * p.done) / p.total);
    status.textContent = p.state === "pulling" ? `${bytes(p.done)} of ${bytes(p.total)}` : `${p.state}${p.detail ? `: ${p.detail}` : ""}`;
    button.disabled = p.state === "pulling";
  };
  button.addEventListener("click", async () => {
    try {
      pulls.set(repo, { state: "pulling", done: 0, total: 0 });
      render();
      await api("/api/models/pull", { method: "POST", body: { repo, file } });
    } catch (error) { pulls.set(repo, { state: "failed", detail: error.message }); render(); }
  });
  pullControl.render = render;
  render();
  return el("div", { class: "secret" }, button, bar, status);
}

function onModelEvent(event) {
  if (!event.progress && event.state === "pulling") return;
  const previous = pulls.get(event.name) ?? {};
  pulls.set(event.name, { ...previous, state: event.state, done: event.progress?.[0] ?? previous.done, total: event.progress?.[1] ?? previous.total, detail: event.detail ?? previous.detail });
  if (route() === "welcome") { if (event.state === "pulling") pullControl.render?.(); else welcome(); return; }
  if (route() !== "models") return;
  if (event.state === "pulling") pullControl.render?.();
  else models();
}

async function wiring() {
  try {
    const { targets, events } = await api("/api/wiring");
    page.replaceChildren(el("h1", { text: "Wiring" }), el("div", { class: "grid" }, targets.map((t) => {
      const action = t.wired ? "unwire" : "wire";
      const button = el("button", { class: t.wired ? "" : "primary", type: "button", id: `${action}-${t.target}`,
        text: t.wired ? `Restore ${t.title}` : `Wire ${t.title}` });
      button.addEventListener("click", async () => {
        button.disabled = true;
        try {
          const result = await api(`/api/wiring/${t.target}/${action}`, { method: "POST", body: {} });
          toast(`${t.title}: ${action === "wire" ? "wired" : "restored"} (${result.files.filter((f) => f.changed).length} file(s) changed)`);
        } catch (error) { toast(error.message, true); }
        wiring();
      });
      return el("section", { class: "card", "data-target": t.target }, el("h2", { text: t.title }),
        el("p", { class: t.wired ? "ok wiring-state" : "muted wiring-state", text: t.wired ? `wired to ${t.url} with key ${t.key_id}` : "not wired" }),
        t.wired && t.url !== location.origin.replace("localhost", "127.0.0.1")
          ? el("p", { class: "warn hint", text: `This gateway runs at ${location.origin}; Claude reaches ${t.url}, the address in config.toml, when a gateway serves it there.` })
          : null,
        el("ul", { class: "checks" }, t.files.map((f) => el("li", {}, el("code", { text: f.path }), " — ",
          el("span", { class: f.problem ? "bad" : "", text: f.state }), backupControl(f)))),
        button);
    })),
    el("p", { class: "hint", text: "Wiring backs each file up, changes only our settings and writes atomically; restoring puts back exactly what was there. While the gateway runs it keeps the wiring in place." }),
    el("h2", { text: "What the watcher did" }),
    el("ul", { class: "checks card", id: "wiring-events" }, events.length
      ? events.map((e) => el("li", { class: e.attention ? "bad" : "" }, `${time(e.at_ms)} — ${e.message}`))
      : el("li", { class: "muted", text: "Nothing since the gateway started." })));
  } catch (error) { failure(error); }
}

const MARKS = { ok: ["✓", "ok"], info: ["i", "muted"], warn: ["!", "warn"], fail: ["✗", "bad"] };

function backupControl(file) {
  if (!file.backups?.length) return null;
  const id = `backup-${file.path.replace(/[^A-Za-z0-9]/g, "-")}`;
  const stamp = (path) => {
    const m = /moe-backup-(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})/.exec(path);
    return m ? new Date(Date.UTC(+m[1], m[2] - 1, +m[3], +m[4], +m[5], +m[6])).toLocaleString() : path;
  };
  const select = el("select", { id }, file.backups.map((b) => el("option", { value: b, text: stamp(b) })));
  const restore = el("button", { type: "button", "aria-label": `Restore the backup of ${file.path}`, text: "Restore backup" });
  restore.addEventListener("click", async () => {
    if (!confirm(`Put the backup from ${stamp(select.value)} back in place of ${file.path}? What is there now is backed up first.`)) return;
    try { await api("/api/wiring/restore", { method: "POST", body: { file: file.path, backup: select.value } }); toast("Backup restored."); }
    catch (error) { toast(error.message, true); }
    wiring();
  });
  return el("div", { class: "secret" }, el("label", { for: id }, "Backups", select), restore);
}

async function doctor() {
  try {
    const { checks } = await api("/api/doctor");
    const failed = checks.filter((c) => c.status === "fail").length;
    page.replaceChildren(el("h1", { text: "Doctor" }),
      el("p", { class: failed ? "bad" : "ok", role: "status", text: failed ? `${failed} check(s) need you.` : "Everything checks out." }),
      el("ul", { class: "checks card" }, checks.map((c) => {
        const [mark, cls] = MARKS[c.status] ?? ["?", "muted"];
        return el("li", { "data-status": c.status }, el("b", { class: cls, "aria-label": c.status, text: `${mark} ` }),
          el("b", { text: c.check }), " — ", c.detail);
      })));
  } catch (error) { failure(error); }
}

// ---- knowledge graph (what moe_orchestrated has learnt, per key) ---------------------------

const knowledgeFilter = { key: "", q: "" };

async function knowledge() {
  try {
    const params = new URLSearchParams();
    if (knowledgeFilter.key) params.set("key_id", knowledgeFilter.key);
    if (knowledgeFilter.q) params.set("q", knowledgeFilter.q);
    const [{ data, total, learning }, keyList] = await Promise.all([
      api(`/api/graph?${params}`), api("/api/keys").then((k) => k.data)]);
    const key = el("select", { id: "graph-key" }, el("option", { value: "", text: "all keys" }),
      keyList.map((k) => el("option", { value: k.id, selected: k.id === knowledgeFilter.key, text: `${k.name} (${k.id})` })));
    const query = el("input", { id: "graph-query", type: "search", value: knowledgeFilter.q, placeholder: "words to search for", autocomplete: "off" });
    const form = el("form", { class: "filters", role: "search", "aria-label": "Search the knowledge graph" },
      el("label", { for: "graph-key" }, "Key", key), el("label", { for: "graph-query" }, "Search", query),
      el("button", { type: "submit", text: "Search" }));
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      knowledgeFilter.key = key.value;
      knowledgeFilter.q = query.value.trim();
      knowledge();
    });
    key.addEventListener("change", () => { knowledgeFilter.key = key.value; knowledge(); });
    const scope = knowledgeFilter.key ? `every fact of ${knowledgeFilter.key}` : "every fact of every key";
    const forgetAll = el("button", { id: "graph-forget-all", class: "danger", type: "button", disabled: !total, text: knowledgeFilter.key ? "Forget all of this key" : "Forget everything" });
    forgetAll.addEventListener("click", async () => {
      if (!confirm(`Forget ${scope}? This cannot be undone.`)) return;
      try {
        const done = await api(`/api/graph${knowledgeFilter.key ? `?key_id=${encodeURIComponent(knowledgeFilter.key)}` : ""}`, { method: "DELETE" });
        toast(`${done.forgotten} facts forgotten`);
        knowledge();
      } catch (error) { toast(error.message, true); }
    });
    page.replaceChildren(el("h1", { text: "Knowledge" }),
      el("p", { role: "status", id: "graph-summary", text: `${total} facts${knowledgeFilter.key ? " for this key" : ""}; learning is ${learning ? "on" : "off ([graph] enabled = false)"}.` }),
      form,
      el("div", { class: "table-wrap" }, el("table", { "aria-label": "Facts" },
        el("thead", {}, el("tr", {}, ["subject", "relation", "object", "key", "seen", "learnt", ""].map((h) => el("th", { scope: "col", text: h })))),
        el("tbody", {}, data.length ? data.map((f) => {
          const forget = el("button", { class: "danger", type: "button", "aria-label": `Forget fact ${f.id}`, text: "Forget" });
          forget.addEventListener("click", async () => {
            try { await api(`/api/graph/${f.id}`, { method: "DELETE" }); toast(`fact ${f.id} forgotten`); knowledge(); }
            catch (error) { toast(error.message, true); }
          });
          return el("tr", { "data-fact": f.id },
            el("td", { text: f.subject }), el("td", { text: f.relation }), el("td", { text: f.object }),
            el("td", { text: f.key_name ? `${f.key_name} (${f.key_id})` : f.key_id }), el("td", { text: f.seen }),
            el("td", { text: date(f.created) }), el("td", {}, forget));
        }) : el("tr", {}, el("td", { colspan: 7, class: "muted", text: knowledgeFilter.q ? "No fact matches." : "Nothing learnt yet: moe_orchestrated's answers teach it." }))))),
      el("p", {}, forgetAll),
      el("p", { class: "hint", text: "Facts are drawn from moe_orchestrated's answers and recalled only for requests with the same key. Revoking a key forgets its facts." }));
  } catch (error) { failure(error); }
}

let logLevel = "";

async function logs() {
  try {
    const { file, lines } = await api(`/api/logs${logLevel ? `?level=${logLevel}` : ""}`);
    const level = el("select", { id: "log-level" }, ["", "error", "warn", "info", "debug"].map((l) =>
      el("option", { value: l, selected: l === logLevel, text: l ? `${l} and worse` : "all" })));
    level.addEventListener("change", () => { logLevel = level.value; logs(); });
    page.replaceChildren(el("h1", { text: "Logs" }),
      el("div", { class: "filters" }, el("label", { for: "log-level" }, "Level", level)),
      el("div", { class: "table-wrap" }, el("table", { "aria-label": "Log, newest first" },
        el("tbody", {}, lines.length ? lines.map((l) => el("tr", {},
          el("td", { class: l.level === "ERROR" ? "bad" : l.level === "WARN" ? "warn" : "muted", text: l.level }),
          el("td", { class: "log", text: l.text })))
          : el("tr", {}, el("td", { class: "muted", text: "Nothing logged yet." }))))),
      el("p", { class: "hint", text: `From ${file}. No key values and no prompt text are ever logged.` }));
  } catch (error) { failure(error); }
}

// ---- welcome (first run: a model, a key, Claude wired) -------------------------------------

async function welcome() {
  try {
    const [models, keyList, wiringState] = await Promise.all([api("/api/models"), api("/api/keys"), api("/api/wiring")]);
    const step = (n, title, done, ...body) => el("section", { class: `card step${done ? " done" : ""}`, "data-step": n },
      el("h2", {}, el("span", { class: done ? "ok" : "muted", "aria-label": done ? "done" : "to do", text: done ? "✓ " : `${n}. ` }), title), ...body);

    // 1. A model: the native file dialog where there is one (the tray app), else a path.
    const model = models.data[0];
    const modelBody = [];
    if (model) modelBody.push(el("p", { class: "ok", text: `${model.name} is registered (${model.architecture ?? "?"}, ${bytes(model.size_bytes)}).` }));
    else {
      if (models.can_pick) {
        const pick = el("button", { class: "primary", type: "button", id: "pick-model", text: "Choose a GGUF file…" });
        pick.addEventListener("click", async () => {
          pick.disabled = true;
          pick.textContent = "Waiting for the file dialog…";
          try {
            const answer = await api("/api/models/pick", { method: "POST" });
            if (answer.picked) toast(`Added ${answer.name}.`);
          } catch (error) { toast(error.message, true); }
          welcome();
        });
        modelBody.push(el("p", {}, pick));
      } else {
        const path = el("input", { id: "welcome-model-path", placeholder: "/path/to/model.gguf", size: 40, autocomplete: "off" });
        const form = el("form", { class: "filters", "aria-label": "Add a model file" },
          el("label", { for: "welcome-model-path" }, "A GGUF file on this machine", path), el("button", { type: "submit", text: "Add" }));
        form.addEventListener("submit", async (event) => {
          event.preventDefault();
          try { const m = await api("/api/models", { method: "POST", body: { path: path.value } }); toast(`Added ${m.name}.`); welcome(); }
          catch (error) { toast(error.message, true); }
        });
        modelBody.push(form);
      }
      if (models.recommended) {
        const r = models.recommended;
        modelBody.push(el("p", { class: "hint", text: `Or download ${r.title} (${bytes(r.size_bytes)}, ${r.context_length.toLocaleString()} tokens of context):` }),
          pullControl(r.repo, r.file));
      }
    }

    // 2. A key: Claude gets it from the keychain through our credential helper.
    const key = keyList.data.find((k) => k.default) ?? keyList.data[0];
    const keyBody = [];
    if (key) keyBody.push(el("p", { class: "ok", text: `Key ${key.name} (${key.id}) answers with profile ${key.profile}.` }));
    else {
      const create = el("button", { class: "primary", type: "button", id: "create-key", text: "Create a key" });
      create.addEventListener("click", async () => {
        create.disabled = true;
        try { await api("/api/keys", { method: "POST", body: { name: "default", profile: "moe_native" } }); toast("Key created and kept in your keychain."); }
        catch (error) { toast(error.message, true); }
        welcome();
      });
      keyBody.push(el("p", {}, create), el("p", { class: "hint", text: "It lives in your OS keychain. Wiring hands it to Claude through a credential helper: you never copy it." }));
    }

    // 3. Claude, one click each.
    const wiringBody = wiringState.targets.map((t) => {
      if (t.wired) return el("p", { class: "ok", "data-target": t.target, text: `${t.title} is wired to this gateway.` });
      const wire = el("button", { class: "primary", type: "button", id: `welcome-wire-${t.target}`, text: `Wire ${t.title}`, disabled: !key });
      wire.addEventListener("click", async () => {
        wire.disabled = true;
        try { await api(`/api/wiring/${t.target}/wire`, { method: "POST" }); toast(`${t.title} wired. Restart it if it is open.`); }
        catch (error) { toast(error.message, true); }
        welcome();
      });
      return el("p", { "data-target": t.target }, wire);
    });
    const wiredAny = wiringState.targets.some((t) => t.wired);
    page.replaceChildren(el("h1", { text: "Welcome to MoE Sovereign" }),
      el("p", { text: "Three steps, and Claude Desktop and Claude Code answer from this machine." }),
      el("div", { class: "grid" },
        step(1, "A model", Boolean(model), ...modelBody),
        step(2, "A key", Boolean(key), ...keyBody),
        step(3, "Claude", wiredAny, ...wiringBody,
          el("p", { class: "hint", text: "Wiring backs Claude's files up and changes only our settings; Restore puts them back exactly." }))),
      el("p", {}, el("a", { href: "#/dashboard", id: "welcome-done", text: model && key && wiredAny ? "All set: open the dashboard →" : "Skip for now: open the dashboard →" })));
  } catch (error) { failure(error); }
}

// ---- routing -------------------------------------------------------------------------------

const pages = { dashboard, requests, profiles, keys, models, wiring, knowledge, doctor, logs, welcome };

function route() {
  const name = location.hash.replace(/^#\//, "").split("?")[0];
  return name in pages ? name : "dashboard";
}

function show() {
  const name = route();
  for (const link of document.querySelectorAll("nav a")) {
    link.toggleAttribute("aria-current", false);
    if (link.getAttribute("href") === `#/${name}`) link.setAttribute("aria-current", "page");
  }
  document.title = `${name[0].toUpperCase()}${name.slice(1)} — MoE Sovereign`;
  pages[name]();
}

window.addEventListener("hashchange", show);
window.addEventListener("resize", () => { if (route() === "dashboard") updateDashboard(); });
connect();
show();
