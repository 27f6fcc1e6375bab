// The dashboard's Knowledge page in a real browser (Debian's chromium driven by playwright-core):
// the facts moe_orchestrated learnt are listed, searched, forgotten one by one and all at once,
// and the store agrees (read back through the CLI). Run by tests/e2e/knowledge.rs.
//
// Environment: LOGIN_URL, MOE_URL, MOE_BIN + MOE_SOVEREIGN_HOME, KEY_ID (whose facts are shown),
// ARTIFACTS, CHROMIUM, MOE_NODE_DIR. Prints one line per check.

import { execFileSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { createRequire } from "node:module";

import { check, waiter } from "./checks.mjs";

const { chromium } = createRequire(`${process.env.MOE_NODE_DIR}/`)("playwright-core");
const env = process.env;
mkdirSync(env.ARTIFACTS, { recursive: true });

let current = null;
const until = waiter(() => current, env.ARTIFACTS, 30_000);

const facts = (...args) => JSON.parse(execFileSync(env.MOE_BIN, ["graph", "list", "--json", ...args], { encoding: "utf8", env: { ...env } }));

const browser = await chromium.launch({ executablePath: env.CHROMIUM, headless: true, args: ["--no-sandbox"] });
try {
  const page = await (await browser.newContext({ viewport: { width: 1100, height: 800 } })).newPage();
  current = page;
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("dialog", (dialog) => dialog.accept());
  await page.goto(env.LOGIN_URL);
  await page.waitForURL(`${env.MOE_URL}/ui/`);
  await page.click('nav a[href="#/knowledge"]');
  const rows = page.locator("tr[data-fact]");
  await until("the learnt facts are listed", async () => (await rows.count()) === facts().length && (await rows.count()) >= 2);
  check("each fact shows its triple and key", (await page.locator("tbody").textContent()).includes("listens on")
    && (await page.locator("tbody").textContent()).includes(env.KEY_ID));
  await page.screenshot({ path: `${env.ARTIFACTS}/knowledge.png`, fullPage: true });

  // Search narrows the list to what matches.
  await page.fill("#graph-query", "9977");
  await page.click('form[role="search"] button');
  await until("search shows only matching facts", async () => (await rows.count()) === 1
    && (await rows.first().textContent()).includes("9977"));
  await page.fill("#graph-query", "");
  await page.click('form[role="search"] button');
  await until("clearing the search lists everything again", async () => (await rows.count()) === facts().length);

  // Forget one: gone from the page and from the store.
  const before = facts();
  const id = await rows.first().getAttribute("data-fact");
  await page.click(`button[aria-label="Forget fact ${id}"]`);
  await until("a forgotten fact leaves the page", async () => (await page.locator(`tr[data-fact="${id}"]`).count()) === 0);
  const after = facts();
  check("a forgotten fact leaves the store", after.length === before.length - 1 && !after.some((f) => String(f.id) === id), after);

  // Forget all of one key (after a confirmation).
  await page.selectOption("#graph-key", env.KEY_ID);
  await until("the key filter applies", async () => (await page.locator("#graph-summary").textContent()).includes("for this key"));
  await page.click("#graph-forget-all");
  await until("forget all empties the key's facts", async () => (await rows.count()) === 0);
  check("the store agrees", facts("--key-id", env.KEY_ID).length === 0);
  check("no page errors", errors.length === 0, errors);
} finally {
  await browser.close();
}
