#!/usr/bin/env bash
# The project's test command (README "Test"; .ci/run calls it):
#   1. installs the test clients and the real model (scripts/test-deps.sh, cached, idempotent);
#   2. checks formatting and lints;
#   3. builds the release binaries (the CLI and the tray app) and the packages (.deb, .rpm);
#   4. runs every test (unit, integration, end-to-end, the tray app on Xvfb) inside a throw-away
#      D-Bus session with an unlocked gnome-keyring, so keys go to a real Secret Service.
#   Each phase's time is printed at the end (also when one fails).
set -euo pipefail
cd "$(dirname "$0")/.."

phases=()
phase_start=$SECONDS
phase_name=""
phase() { # phase NAME: ends the running phase, starts NAME
  [ -n "$phase_name" ] && phases+=("$(printf '%-28s %5ds' "$phase_name" $((SECONDS - phase_start)))")
  phase_name="$1" phase_start=$SECONDS
}
report() {
  phase ""
  echo "== phase times (total ${SECONDS}s)"
  printf '  %s\n' "${phases[@]}"
}
scratch="$(mktemp -d)"
trap 'report; rm -rf "$scratch"' EXIT

phase "test dependencies"
scripts/test-deps.sh

phase "fmt + shellcheck"
cargo fmt --all --check
shellcheck installers/*.sh scripts/*.sh icons/*.sh .ci/run
phase "clippy"
cargo clippy --workspace --all-targets --release -- -D warnings

# The end-to-end tests drive exactly the binary users get: built on its own, then copied aside.
# No library crate has test-only features, so `cargo test` reuses these artefacts.
phase "release build"
cargo build --release -p moe-sovereign-cli -p moe-sovereign-desktop
release="${CARGO_TARGET_DIR:-$PWD/target}/release"
cp "$release/moe-sovereign" "$scratch/moe-sovereign"
cp "$release/moe-sovereign-desktop" "$scratch/moe-sovereign-desktop"
export MOE_SOVEREIGN_BIN="$scratch/moe-sovereign" MOE_SOVEREIGN_DESKTOP_BIN="$scratch/moe-sovereign-desktop"
# What users install (.deb, .rpm), from the same binaries; a test installs the .deb.
phase "packages"
SKIP_BUILD=1 scripts/package.sh
debs=("$release"/bundle/deb/*.deb)
export MOE_SOVEREIGN_DEB="${debs[0]}"
# A fresh HOME: an existing login keyring with another password would make the unlock fail.
export MOE_TEST_CACHE="${MOE_TEST_CACHE:-$HOME/.cache/moe-sovereign-test}"
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
phase "test build"
cargo test --release --workspace --no-run "$@"
phase "tests"
HOME="$scratch" XDG_DATA_HOME="$scratch/.local/share" XDG_CONFIG_HOME="$scratch/.config" \
dbus-run-session -- bash -c '
  set -euo pipefail
  printf "test-keyring" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  cargo test --release --workspace "$@"
' bash "$@"
