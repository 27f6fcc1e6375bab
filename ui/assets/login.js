// Trades the one-time token in the URL's fragment (never sent to a server by the browser, never
// in a log) for a session cookie, then opens the dashboard.
const status = document.getElementById("login-status");
const token = location.hash.slice(1);
// `?next=logs`: the page to open once signed in (the tray opens onboarding or the logs).
const next = new URLSearchParams(location.search).get("next") ?? "";
history.replaceState(null, "", location.pathname);

async function signIn() {
  if (!token) {
    status.textContent = "This page needs a login link.";
    return;
  }
  const response = await fetch("/api/session", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ token }),
  });
  if (response.ok) {
    location.replace(/^[a-z]{1,20}$/.test(next) ? `/ui/#/${next}` : "/ui/");
    return;
  }
  const body = await response.json().catch(() => null);
  status.textContent = body?.error?.message ?? `Sign-in failed (${response.status}).`;
  status.classList.add("error");
}

signIn().catch((error) => {
  status.textContent = `Sign-in failed: ${error.message}`;
  status.classList.add("error");
});
