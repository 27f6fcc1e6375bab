#!/usr/bin/python3
"""Tray app vs. headless `serve`, same machine, same run (no model loaded, no window open):
  - launch -> first 200 on /health;
  - idle RSS after it settles, and CPU time used over an idle minute;
  - quit -> exited (tray: the menu's Quit clicked over D-Bus; serve: SIGTERM).
Usage: bench/tray/run.sh (runs this inside its own D-Bus session with a virtual display).
Writes bench/results/tray.md."""
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TARGET = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
CLI = os.environ.get("MOE_SOVEREIGN_BIN", os.path.join(TARGET, "release/moe-sovereign"))
DESKTOP = os.environ.get("MOE_SOVEREIGN_DESKTOP_BIN", os.path.join(TARGET, "release/moe-sovereign-desktop"))
CLIENTS = os.path.join(ROOT, "tests/clients")
IDLE_S = int(os.environ.get("IDLE_S", "60"))
RUNS = int(os.environ.get("RUNS", "3"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def healthy(port):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
            return r.status == 200
    except OSError:
        return False


def status_kib(pid, field):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def cpu_s(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_exit(proc, limit=30):
    start = time.monotonic()
    try:
        proc.wait(limit)
    except subprocess.TimeoutExpired:
        proc.kill()
        return None
    return time.monotonic() - start


def home_with_key(port):
    home = tempfile.mkdtemp(prefix="moe-bench-tray-")
    with open(os.path.join(home, "config.toml"), "w") as f:
        f.write(f'listen = "127.0.0.1:{port}"\nsecret_store = "file"\n')
    subprocess.run([CLI, "keys", "create", "--profile", "moe_native"], env={**os.environ, "MOE_SOVEREIGN_HOME": home},
                   check=True, capture_output=True)
    return home


def measure(kind, display, host_events):
    port = free_port()
    home = home_with_key(port)
    env = {**os.environ, "MOE_SOVEREIGN_HOME": home, "DISPLAY": display, "NO_AT_BRIDGE": "1", "RUST_LOG": "warn"}
    cmd = [CLI, "serve"] if kind == "serve" else [DESKTOP, "--hidden"]
    start = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not healthy(port):
        if proc.poll() is not None:
            sys.exit(f"{kind} exited early")
        time.sleep(0.005)
    first_200 = time.monotonic() - start
    item = None
    if kind == "desktop":
        deadline = time.monotonic() + 30
        while item is None and time.monotonic() < deadline:
            line = host_events.readline()
            event = json.loads(line) if line.strip() else {}
            if event.get("event") == "registered":
                item = (event["service"], event["path"])
    time.sleep(5)  # settle: the first telemetry sample, lazy statics
    cpu0, t0 = cpu_s(proc.pid), time.monotonic()
    time.sleep(IDLE_S)
    idle_cpu = (cpu_s(proc.pid) - cpu0) / (time.monotonic() - t0)
    rss = status_kib(proc.pid, "VmRSS") / 1024
    anon = status_kib(proc.pid, "RssAnon") / 1024
    start = time.monotonic()
    if kind == "serve":
        proc.send_signal(signal.SIGTERM)
    else:
        subprocess.run(["/usr/bin/python3", os.path.join(CLIENTS, "dbusmenu.py"), "click", item[0], item[1], "Quit"], check=True)
    quit_s = wait_exit(proc)
    # The click itself goes through python + D-Bus; that is part of what a user waits for.
    return {"first_200_ms": first_200 * 1000, "rss_mib": rss, "anon_mib": anon, "idle_cpu_pct": idle_cpu * 100,
            "quit_ms": None if quit_s is None else (time.monotonic() - start) * 1000}


def main():
    xvfb = subprocess.Popen(["Xvfb", "-displayfd", "1", "-screen", "0", "1280x900x24", "-nolisten", "tcp"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    display = ":" + xvfb.stdout.readline().strip()
    host = subprocess.Popen(["/usr/bin/python3", os.path.join(CLIENTS, "tray_host.py")], stdout=subprocess.PIPE, text=True)
    assert json.loads(host.stdout.readline())["event"] == "ready"
    rows = {"serve": [], "desktop": []}
    try:
        for _ in range(RUNS):
            for kind in ("serve", "desktop"):
                rows[kind].append(measure(kind, display, host.stdout))
                print(kind, rows[kind][-1], flush=True)
    finally:
        host.kill()
        xvfb.kill()

    def median(kind, key):
        values = sorted(r[key] for r in rows[kind] if r[key] is not None)
        return values[len(values) // 2] if values else float("nan")

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    out = [
        "# Tray app vs. headless `serve`",
        "",
        f"{time.strftime('%Y-%m-%d')} · {cpu} · {os.cpu_count()} cores · {platform.system()} {platform.release()} · "
        f"Xvfb + a stand-in panel (tests/clients/tray_host.py) · no model loaded, no window open · "
        f"median of {RUNS} runs · idle = {IDLE_S} s after a 5 s settle",
        "",
        "| | `moe-sovereign serve` | `moe-sovereign-desktop` (tray) |",
        "|---|---|---|",
        f"| launch → first 200 on /health | {median('serve', 'first_200_ms'):.0f} ms | {median('desktop', 'first_200_ms'):.0f} ms |",
        f"| idle RSS | {median('serve', 'rss_mib'):.1f} MiB | {median('desktop', 'rss_mib'):.1f} MiB |",
        f"| of which private (RssAnon) | {median('serve', 'anon_mib'):.1f} MiB | {median('desktop', 'anon_mib'):.1f} MiB |",
        f"| idle CPU | {median('serve', 'idle_cpu_pct'):.3f} % of a core | {median('desktop', 'idle_cpu_pct'):.3f} % of a core |",
        f"| quit → exited | {median('serve', 'quit_ms'):.0f} ms (SIGTERM) | {median('desktop', 'quit_ms'):.0f} ms (menu Quit over D-Bus) |",
        "",
        "Goals (issue: the tray app): ≤ 80 MB idle RSS, no CPU when idle, quit ≤ 2 s.",
        "The tray's window (WebKitGTK) is not open here: it is created on *Open dashboard* and destroyed",
        "on close, so its memory is only spent while it is shown. The rest of the tray's RSS is shared,",
        "file-backed pages: GTK, WebKitGTK and our binary's code. GTK would also open the OpenGL driver",
        "at start only to pick a visual (Mesa + LLVM here: 44 MiB more, 128 MiB in all, measured); the",
        "app sets GDK_GL=disable unless the user set it, and the window draws the same without it.",
        "",
        "Raw runs: " + json.dumps(rows),
        "",
    ]
    path = os.path.join(ROOT, "bench/results/tray.md")
    with open(path, "w") as f:
        f.write("\n".join(out))
    print("\n".join(out))


if __name__ == "__main__":
    main()
