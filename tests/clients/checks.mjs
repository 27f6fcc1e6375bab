// What the browser scripts share: one printed line per check (a failure ends the script), and
// waiting for a condition with a deadline — never for a fixed time.

export function check(name, condition, detail = "") {
  if (!condition) {
    console.log(`FAIL ${name}: ${typeof detail === "string" ? detail : JSON.stringify(detail)}`);
    process.exit(1);
  }
  console.log(`ok   ${name}`);
}

// `until(what, probe, ms)`: waits for `probe` to return a truthy value; fails after `ms` with the
// last value, what the page's toast said and a screenshot (`artifacts`/failure.png) of the page
// `page()` returns.
export function waiter(page, artifacts, defaultMs = 60_000) {
  return async function until(what, probe, ms = defaultMs) {
    const deadline = Date.now() + ms;
    let last;
    while (Date.now() < deadline) {
      try { last = await probe(); } catch (error) { last = error; }
      if (last && !(last instanceof Error)) return last;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    let shown = "";
    const current = page();
    if (current) {
      shown = await current.locator("#toast").textContent().catch(() => "");
      await current.screenshot({ path: `${artifacts}/failure.png`, fullPage: true }).catch(() => {});
    }
    check(what, false, `still not true after ${ms} ms (last: ${last}; the page said: ${shown})`);
  };
}
