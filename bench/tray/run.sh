#!/usr/bin/env bash
# Tray app vs. headless serve: launch time, idle RSS and CPU, quit time -> bench/results/tray.md.
# Builds both release binaries first; runs in a private D-Bus session on a virtual display.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --release -p moe-sovereign-cli -p moe-sovereign-desktop
exec dbus-run-session -- /usr/bin/python3 bench/tray/run.py
