#!/usr/bin/env bash
# Builds what users install: the tray app with the `moe-sovereign` CLI beside it (Claude's
# credential helper calls the CLI), as a .deb and an .rpm here. Both are made by Tauri's bundler
# offline; AppImage, NSIS (.exe), WiX (.msi) and .dmg need a builder with internet or their
# platform: BUNDLES=appimage on such a builder (README "Packages").
#   scripts/package.sh            builds the release binaries first
#   SKIP_BUILD=1 scripts/package.sh   bundles binaries already built (the test command does)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-$PWD/target}"
triple="$(rustc -vV | sed -n 's/^host: //p')"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cargo build --release -p moe-sovereign-cli -p moe-sovereign-desktop
fi
rm -rf "$target/release/bundle"   # only this build's packages stay
# Users get stripped binaries; the symbols go to bundle/symbols/ (with a debuglink), for reading
# a crash report. The build's own binaries are put back afterwards, untouched (same mtime), so
# cargo does not relink them and the tests keep their symbols.
stash="$(mktemp -d)"
restore() {
  for bin in moe-sovereign moe-sovereign-desktop; do
    [ -f "$stash/$bin" ] && cp -p "$stash/$bin" "$target/release/$bin"
  done
  rm -rf "$stash"
}
trap restore EXIT
mkdir -p "$target/release/bundle/symbols"
for bin in moe-sovereign moe-sovereign-desktop; do
  cp -p "$target/release/$bin" "$stash/$bin"
  objcopy --only-keep-debug "$target/release/$bin" "$target/release/bundle/symbols/$bin.sym"
  objcopy --strip-all --add-gnu-debuglink="$target/release/bundle/symbols/$bin.sym" "$target/release/$bin"
done
# The bundler ships "external binaries" named for their target.
mkdir -p src-tauri/binaries
cp "$target/release/moe-sovereign" "src-tauri/binaries/moe-sovereign-$triple"
tauri="${TAURI_CLI:-${MOE_TEST_CACHE:-$HOME/.cache/moe-sovereign-test}/node/node_modules/.bin/tauri}"
if [ ! -x "$tauri" ]; then
  echo "package: the Tauri CLI is missing: scripts/test-deps.sh installs it (or npm i -g @tauri-apps/cli@2)" >&2
  exit 1
fi
"$tauri" bundle --ci --bundles "${BUNDLES:-deb,rpm}" --config src-tauri/tauri.bundle.json
for package in "$target"/release/bundle/*/*.{deb,rpm}; do
  [ -f "$package" ] && printf '%s\t%s\n' "$(du -h "$package" | cut -f1)" "$package"
done
