#!/usr/bin/env bash
# The project's test command (README "Test"; .ci/run calls it):
#   1. installs the test clients and the real model (scripts/test-deps.sh, cached, idempotent);
#   2. checks formatting and lints;
#   3. builds the release binary and runs every test (unit, integration, end-to-end) inside a
#      throw-away D-Bus session with an unlocked gnome-keyring, so keys go to a real Secret Service.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/test-deps.sh

cargo fmt --all --check
shellcheck installers/*.sh scripts/*.sh .ci/run
cargo clippy --workspace --all-targets --release -- -D warnings

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# The end-to-end tests drive exactly the binary users get: built on its own (test-only features
# such as the fake expert are switched on by `cargo test` for test targets only), then copied aside.
cargo build --release -p moe-sovereign-cli
cp "${CARGO_TARGET_DIR:-$PWD/target}/release/moe-sovereign" "$scratch/moe-sovereign"
export MOE_SOVEREIGN_BIN="$scratch/moe-sovereign"
# A fresh HOME: an existing login keyring with another password would make the unlock fail.
export MOE_TEST_CACHE="${MOE_TEST_CACHE:-$HOME/.cache/moe-sovereign-test}"
export CARGO_HOME="${CARGO_HOME:-$HOME/.cargo}" RUSTUP_HOME="${RUSTUP_HOME:-$HOME/.rustup}"
HOME="$scratch" XDG_DATA_HOME="$scratch/.local/share" XDG_CONFIG_HOME="$scratch/.config" \
dbus-run-session -- bash -c '
  set -euo pipefail
  printf "test-keyring" | gnome-keyring-daemon --unlock --components=secrets >/dev/null
  cargo test --release --workspace "$@"
' bash "$@"
