// Dashboard benchmark: what the dashboard costs the gateway, and how fast it paints.
//   node bench/dashboard/run.mjs   (after `cargo build --release -p moe-sovereign-cli` and
//                                   `scripts/test-deps.sh`; run inside a D-Bus session with a
//                                   Secret Service, as scripts/test.sh does)
// Measures, on a scratch home with no model: gateway CPU with no dashboard open and with one open
// (telemetry at 1 Hz over /api/events), /api/events delivery latency, idle RSS before and after
// using the UI, and the dashboard's first paint in chromium. Writes bench/results/dashboard.md.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "../..");
const cache = process.env.MOE_TEST_CACHE ?? join(process.env.HOME, ".cache/moe-sovereign-test");
const { chromium } = createRequire(join(cache, "node/"))("playwright-core");
const target = process.env.CARGO_TARGET_DIR ?? join(root, "target");
const bin = process.env.MOE_SOVEREIGN_BIN ?? join(target, "release/moe-sovereign");
const SECONDS = Number(process.env.BENCH_SECONDS ?? 30);

const home = mkdtempSync(join(tmpdir(), "moe-bench-"));
const env = { ...process.env, MOE_SOVEREIGN_HOME: home };
execFileSync(bin, ["keys", "create", "--profile", "moe_native"], { env });
const server = spawn(bin, ["serve", "--listen", "127.0.0.1:0"], { env, stdio: ["ignore", "pipe", "ignore"] });
const url = await new Promise((resolve) => {
  server.stdout.on("data", (chunk) => {
    const m = /listening on (\S+)/.exec(String(chunk));
    if (m) resolve(m[1]);
  });
});
const pid = server.pid;
const ticks = () => { // utime + stime, in clock ticks (1/100 s)
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return Number(fields[11]) + Number(fields[12]);
};
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]) / 1024;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function cpuPercent(seconds) {
  const before = ticks();
  await sleep(seconds * 1000);
  return (ticks() - before) / seconds; // ticks per second = percent of one core
}
const link = () => execFileSync(bin, ["ui", "--no-open"], { env, encoding: "utf8" }).trim();

try {
  await sleep(2000);
  const rssIdle = rss();
  const cpuClosed = await cpuPercent(SECONDS);

  const browser = await chromium.launch({ executablePath: "/usr/bin/chromium", headless: true, args: ["--no-sandbox"] });
  const page = await browser.newPage();
  await page.goto(link());
  await page.waitForURL(`${url}/ui/`);
  await page.locator("#cpu-now").waitFor();
  // First paint of the dashboard, measured by the browser on a fresh load.
  await page.reload();
  await page.locator("#cpu-now").waitFor();
  const paint = await page.evaluate(() => performance.getEntriesByType("paint").find((e) => e.name === "first-contentful-paint")?.startTime);
  const loaded = await page.evaluate(() => performance.getEntriesByType("navigation")[0].loadEventEnd);
  // Telemetry delivery: sample time (gateway clock) → arrival in the page (same machine).
  const latencies = await page.evaluate(async () => {
    const out = [];
    const events = new EventSource("/api/events");
    await new Promise((resolve) => {
      events.addEventListener("telemetry", (e) => {
        out.push(Date.now() - JSON.parse(e.data).at_ms);
        if (out.length === 10) { events.close(); resolve(); }
      });
    });
    return out.sort((a, b) => a - b);
  });
  const cpuOpen = await cpuPercent(SECONDS);
  for (const name of ["requests", "profiles", "keys", "models", "wiring", "doctor", "logs"]) {
    await page.goto(`${url}/ui/#/${name}`);
    await page.locator("main h1").waitFor();
  }
  await browser.close();
  await sleep(3000);
  const rssAfter = rss();
  const cpuAfter = await cpuPercent(SECONDS);

  const md = `# Dashboard\n\nMeasured ${new Date().toISOString().slice(0, 10)} on this machine (${execFileSync("nproc", { encoding: "utf8" }).trim()} cores), \`node bench/dashboard/run.mjs\`: \`moe-sovereign serve\` on a scratch home with no model; CPU from /proc over ${SECONDS} s each (percent of one core); chromium ${browser.version?.() ?? ""} headless.\n\n| what | value |\n|---|---|\n| gateway CPU, no dashboard open (telemetry every 10 s) | ${cpuClosed.toFixed(2)} % |\n| gateway CPU, dashboard open (telemetry at 1 Hz over /api/events) | ${cpuOpen.toFixed(2)} % |\n| gateway CPU after the dashboard closed | ${cpuAfter.toFixed(2)} % |\n| /api/events delivery, sample taken → in the page, p50 / max of 10 | ${latencies[5]} / ${latencies[9]} ms |\n| dashboard first contentful paint (loopback) | ${paint?.toFixed(0)} ms |\n| dashboard load event | ${loaded.toFixed(0)} ms |\n| idle RSS before any UI use | ${rssIdle.toFixed(1)} MiB |\n| idle RSS after using every page | ${rssAfter.toFixed(1)} MiB |\n\nGoals (issue "The dashboard"): at most 1 % of one core while open, none while closed; first paint ≤ 300 ms. No peer runs here: Ollama's and LM Studio's apps are not installable on this machine.\n`;
  writeFileSync(join(root, "bench/results/dashboard.md"), md);
  console.log(md);
} finally {
  server.kill("SIGTERM");
}
