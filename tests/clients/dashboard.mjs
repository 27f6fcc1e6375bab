// The dashboard in a real browser (Debian's chromium driven by playwright-core), against the
// real binary serving the real model. Run by tests/e2e/dashboard.rs.
//
// Environment: LOGIN_URL (a one-time link from `moe-sovereign ui --no-open`), MOE_URL, MOE_KEY
// (the default key), MOE_BIN + MOE_SOVEREIGN_HOME (to read state back through the CLI), PYTHON
// (with the anthropic SDK), ARTIFACTS (screenshots), CHROMIUM, MOE_NODE_DIR (where
// playwright-core is installed), CLAUDE_CODE_FILE + CLAUDE_DESKTOP_FILE (fixtures in the
// gateway's scratch user home, to wire and restore). Prints one line per check.
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";

import { check, waiter } from "./checks.mjs";

const { chromium } = createRequire(`${process.env.MOE_NODE_DIR}/`)("playwright-core");

const env = process.env;
const ARTIFACTS = env.ARTIFACTS;
mkdirSync(ARTIFACTS, { recursive: true });

// The page under test, for failure reports.
let current = null;
const until = waiter(() => current, ARTIFACTS);

function cli(...args) {
  return execFileSync(env.MOE_BIN, args, { encoding: "utf8", env: { ...env } });
}

// One request with the official Python SDK: { status, usage } (status 401 when refused).
function sdk(key, stream, model = "claude-opus-4-8") {
  const script = `
import anthropic, json, os, sys
client = anthropic.Anthropic(base_url=os.environ["MOE_URL"], api_key=sys.argv[1], max_retries=0)
try:
    kwargs = dict(model=sys.argv[3], max_tokens=12,
                  messages=[{"role": "user", "content": "Name a color."}])
    if sys.argv[2] == "stream":
        with client.messages.stream(**kwargs) as s:
            m = s.get_final_message()
    else:
        m = client.messages.create(**kwargs)
    print(json.dumps({"status": 200, "input": m.usage.input_tokens, "output": m.usage.output_tokens}))
except anthropic.APIStatusError as e:
    print(json.dumps({"status": e.status_code}))
`;
  return JSON.parse(execFileSync(env.PYTHON, ["-c", script, key, stream ? "stream" : "json", model], { encoding: "utf8", env: { ...env } }));
}

const browser = await chromium.launch({ executablePath: env.CHROMIUM, headless: true, args: ["--no-sandbox"] });
try {
  const context = await browser.newContext({ viewport: { width: 1100, height: 800 } });
  const page = await context.newPage();
  current = page;
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });

  // The one-time link logs in…
  await page.goto(env.LOGIN_URL);
  await page.waitForURL(`${env.MOE_URL}/ui/`);
  check("login link opens the dashboard", true);
  await page.screenshot({ path: `${ARTIFACTS}/login-redirect.png` });
  // …and fails the second time, in another browser.
  const other = await browser.newContext();
  const second = await other.newPage();
  await second.goto(env.LOGIN_URL);
  const refused = await until("second use refused", async () => {
    const text = await second.locator("#login-status").textContent();
    return /already used|expired/.test(text) && text;
  });
  check("a login link works once", refused.includes("already used"), refused);
  await second.screenshot({ path: `${ARTIFACTS}/login-used-twice.png` });
  const stranger = await second.request.get(`${env.MOE_URL}/api/overview`);
  check("no session in the other browser", stranger.status() === 401, stranger.status());
  await other.close();

  // Dashboard: CPU and RAM numbers that change (1 Hz while the page is open).
  const cpu = page.locator("#cpu-now");
  const firstCpu = await until("CPU shows a number", async () => {
    const t = await cpu.textContent();
    return /\d+ %/.test(t) && t;
  });
  const ram = page.locator("#ram-now");
  const firstRam = await ram.textContent();
  check("RAM shows used of total", /GiB|MiB/.test(firstRam) && / of /.test(firstRam), firstRam);
  const detail = page.locator("#ram-detail");
  const firstDetail = await detail.textContent();
  await until("live numbers change", async () =>
    (await cpu.textContent()) !== firstCpu || (await detail.textContent()) !== firstDetail || (await ram.textContent()) !== firstRam);
  check("CPU/RAM numbers change", true);
  const gpu = await page.locator("#gpus").textContent();
  check("GPU card says what it found", gpu.length > 0, gpu);
  await page.screenshot({ path: `${ARTIFACTS}/dashboard.png`, fullPage: true });

  // A request with the Python SDK shows in Requests with the usage it reported.
  const answer = sdk(env.MOE_KEY, false);
  check("SDK request answered", answer.status === 200 && answer.output > 0, answer);
  await page.click("nav >> text=Requests");
  const row = page.locator("#trace-rows tr").first();
  await until("the request appears", async () => (await row.locator(".input-tokens").count()) > 0);
  const shown = { input: Number(await row.locator(".input-tokens").textContent()), output: Number(await row.locator(".output-tokens").textContent()) };
  check("Requests shows the SDK's usage", shown.input === answer.input && shown.output === answer.output, { shown, answer });
  const streamed = sdk(env.MOE_KEY, true);
  await until("a streamed request appears live", async () =>
    Number(await row.locator(".output-tokens").textContent()) === streamed.output &&
    Number(await row.locator(".input-tokens").textContent()) === streamed.input &&
    (await page.locator("#trace-rows tr").count()) >= 2);
  check("a streamed request appears live with its usage", true);
  await page.screenshot({ path: `${ARTIFACTS}/requests.png`, fullPage: true });

  // Switching the default key's profile in the UI shows in `profiles list`.
  await page.click("nav >> text=Profiles");
  const radio = page.getByRole("radio", { name: /moe_reasoning/ });
  await radio.check();
  const active = await until("profiles list shows moe_reasoning", () => {
    const rows = JSON.parse(cli("profiles", "list", "--json"));
    return rows.find((r) => r.active)?.profile === "moe_reasoning" && rows;
  });
  check("profile switched through the UI", active.length === 3);

  // Bind moe_orchestrated to the registered model: config.toml changes (its comment kept, the
  // old file backed up) and the profile answers at once, without a restart.
  const form = page.getByRole("form", { name: "What answers moe_orchestrated" });
  const option = await form.locator("select option[value^='model:']").first().getAttribute("value");
  await form.getByLabel("Answer moe_orchestrated with").selectOption(option);
  await form.getByRole("button", { name: "Use for moe_orchestrated" }).click();
  const config = await until("config.toml binds moe_orchestrated", () => {
    const text = readFileSync(env.MOE_CONFIG, "utf8");
    return text.includes("[profiles.moe_orchestrated]") && text;
  });
  check("the config keeps its comment", config.startsWith("# my settings: keep this comment\n"), config);
  const bound = JSON.parse(cli("profiles", "list", "--json")).find((r) => r.profile === "moe_orchestrated");
  check("profiles list shows the new expert", bound.expert === option.slice("model:".length), bound);
  const orchestrated = sdk(env.MOE_KEY, false, "claude-moe-orchestrated");
  check("the profile answers without a restart", orchestrated.status === 200 && orchestrated.output > 0, orchestrated);
  await page.screenshot({ path: `${ARTIFACTS}/profiles.png`, fullPage: true });

  // A key created in the UI works with the SDK; revoked in the UI it gets 401.
  await page.click("nav >> text=Keys");
  await page.getByLabel("Name").fill("made-in-ui");
  await page.getByRole("button", { name: "Create key" }).click();
  const value = (await until("the new key is shown once", async () => {
    const v = await page.locator("#new-key-value").textContent();
    return v?.startsWith("moe-sk-") && v;
  })).trim();
  await page.screenshot({ path: `${ARTIFACTS}/keys-created.png`, fullPage: true });
  check("a UI-made key works with the SDK", sdk(value, false).status === 200);
  const listed = JSON.parse(cli("keys", "list", "--json"));
  const made = listed.find((k) => k.name === "made-in-ui");
  check("the UI-made key is listed by the CLI", !!made, listed);
  page.once("dialog", (dialog) => dialog.accept());
  await page.getByRole("button", { name: `Revoke made-in-ui (${made.id})` }).click();
  await until("the key is gone from the table", async () => (await page.locator(`tr[data-key="${made.id}"]`).count()) === 0);
  await until("the revoked key gets 401", () => sdk(value, false).status === 401);
  check("a UI-revoked key gets 401", true);
  await page.screenshot({ path: `${ARTIFACTS}/keys.png`, fullPage: true });

  // Wire and restore both Claude clients from the UI: the files change, then come back byte
  // for byte.
  for (const [target, title, file, marker] of [
    ["claude-code", "Claude Code", env.CLAUDE_CODE_FILE, "ANTHROPIC_BASE_URL"],
    ["claude-desktop", "Claude Desktop", env.CLAUDE_DESKTOP_FILE, "thirdPartyInference"],
  ]) {
    const original = readFileSync(file);
    await page.click("nav >> text=Wiring");
    await page.getByRole("button", { name: `Wire ${title}` }).click();
    await until(`${title} shows wired`, async () => /wired to/.test(await page.locator(`[data-target="${target}"] .wiring-state`).textContent()));
    const wired = readFileSync(file, "utf8");
    check(`${title} wired from the UI`, wired.includes(marker) && wired.includes(env.MOE_URL.replace(/:\d+$/, "")), wired);
    // Claude Code calls the credential helper; only Desktop's seed block must hold the key.
    if (target === "claude-code") check("Claude Code's settings hold no API key", !wired.includes("moe-sk-"), wired);
    await page.screenshot({ path: `${ARTIFACTS}/wiring-${target}.png`, fullPage: true });
    await page.getByRole("button", { name: `Restore ${title}` }).click();
    await until(`${title} shows not wired`, async () => (await page.locator(`[data-target="${target}"] .wiring-state`).textContent()) === "not wired");
    check(`${title} restored byte for byte`, readFileSync(file).equals(original), readFileSync(file, "utf8"));
    if (target === "claude-code") {
      // Its backups: the newest is the wired text (saved by the restore), then the original.
      page.once("dialog", (dialog) => dialog.accept());
      await page.getByRole("button", { name: `Restore the backup of ${file}` }).click();
      await until("the newest backup is back", () => readFileSync(file, "utf8") === wired);
      const select = page.getByLabel("Backups").first();
      const options = await select.locator("option").evaluateAll((os) => os.map((o) => o.value));
      const original_backup = options.find((o) => readFileSync(o).equals(original));
      check("a backup holds the original", !!original_backup, options);
      await select.selectOption(original_backup);
      page.once("dialog", (dialog) => dialog.accept());
      await page.getByRole("button", { name: `Restore the backup of ${file}` }).click();
      await until("the original is back from its backup", () => readFileSync(file).equals(original));
      check("backups restore from the UI", true);
    }
  }

  // Unload the model the requests loaded, then load it again, from the Models page.
  await page.click("nav >> text=Models");
  const registered = page.locator("#page tr[data-model]");
  await registered.first().waitFor();
  const state = registered.first().locator(".model-state");
  check("the answering model shows loaded", (await state.textContent()) === "loaded", await state.textContent());
  await registered.first().getByRole("button", { name: /^Unload / }).click();
  await until("the model shows on disk", async () => (await state.textContent()) === "on disk");
  await registered.first().getByRole("button", { name: /^Load / }).click();
  await until("the model shows loaded again", async () => (await state.textContent()) === "loaded", 120_000);
  check("unload and load from the UI", true);

  // Pull the recommended model (from the fake hub): progress shows, and it ends registered.
  for (const name of await registered.evaluateAll((rows) => rows.map((r) => r.dataset.model))) {
    page.once("dialog", (dialog) => dialog.accept());
    await page.getByRole("button", { name: `Remove ${name}` }).click();
    await until(`${name} removed`, async () => (await page.locator(`tr[data-model="${name}"]`).count()) === 0);
  }
  await page.evaluate(() => {
    window.modelEvents = [];
    new EventSource("/api/events").addEventListener("model", (e) => window.modelEvents.push(JSON.parse(e.data)));
  });
  await page.getByRole("button", { name: "Download" }).click();
  await until("the pulled model is registered", async () => (await registered.count()) === 1, 120_000);
  const seen = await page.evaluate(() => window.modelEvents);
  const partial = seen.filter((e) => e.state === "pulling" && e.progress && e.progress[0] < e.progress[1]);
  check("download progress reached the page", partial.length > 0 && seen.at(-1).state === "registered", seen.slice(-3));
  check("the progress bar filled", Number(await page.locator("#pull-progress").getAttribute("value")) === 100 ||
    /registered/.test(await page.locator("#pull-status").textContent()));
  const listedModels = JSON.parse(cli("models", "list", "--json"));
  check("the CLI lists the pulled model", listedModels.length === 1 && /smollm2/i.test(listedModels[0].name), listedModels);
  await page.screenshot({ path: `${ARTIFACTS}/models-pulled.png`, fullPage: true });

  // Every other page renders without errors.
  for (const name of ["models", "wiring", "doctor", "logs"]) {
    await page.click(`nav >> text=${name[0].toUpperCase()}${name.slice(1)}`);
    await page.locator("main h1").waitFor();
    await until(`${name} page loaded`, async () => (await page.locator("main").textContent()).length > 20);
    await page.screenshot({ path: `${ARTIFACTS}/${name}.png`, fullPage: true });
    check(`${name} page renders`, (await page.locator("main .error").count()) === 0, await page.locator("main").textContent());
  }
  const logged = await page.locator("main").textContent();
  check("logs page shows the gateway's log", /listening|local model|INFO/.test(logged), logged.slice(0, 300));
  check("no key value in the log page", !logged.includes("moe-sk-"), "a key in the log");
  await page.click("nav >> text=Models");
  await page.locator("main h1").waitFor();
  const models = await page.locator("main").textContent();
  check("models page lists the model", /SmolLM2/i.test(models), models);

  // The dashboard after all that work, wide (the README's picture) and narrow (the tray window).
  await page.click("nav >> text=Dashboard");
  await until("charts have history", async () => /\d+ %/.test(await page.locator("#cpu-now").textContent()));
  await page.screenshot({ path: `${ARTIFACTS}/dashboard-busy.png` });
  await page.setViewportSize({ width: 400, height: 760 });
  await page.click("nav >> text=Dashboard");
  await page.locator("#cpu-now").waitFor();
  await page.screenshot({ path: `${ARTIFACTS}/dashboard-400px.png`, fullPage: true });
  check("no script errors", errors.length === 0, errors);
} finally {
  await browser.close();
}
