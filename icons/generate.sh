#!/usr/bin/env bash
# Every icon the app and its installers need, from two drawings: source.svg (the app icon) and
# tray.svg (the tray glyph). Needs rsvg-convert (Debian librsvg2-bin) and npm (Tauri's own icon
# generator, @tauri-apps/cli, for the platform sizes, .ico and .icns). The output is committed;
# run this again after changing a drawing.
set -euo pipefail
cd "$(dirname "$0")"
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

rsvg-convert -w 1024 -h 1024 source.svg -o "$tmp/source.png"
npx --yes @tauri-apps/cli@2.12.5 icon "$tmp/source.png" --output . >"$tmp/icon.log" 2>&1 ||
  { cat "$tmp/icon.log" >&2; exit 1; }
rm -rf android ios   # mobile targets: not ours
cp source.svg ../ui/assets/icon.svg   # the dashboard's favicon and header mark

# Tray: idle (white), busy (white, green dot), attention (white, amber dot); 32 and 64 px.
# macOS wants a black template image (it tints it itself) and no colour dot.
tray() { # tray NAME COLOR DOT
  sed -e "s/COLOR/$2/g" -e "s/DOT/$3/g" tray.svg >"$tmp/$1.svg"
  rsvg-convert -w 32 -h 32 "$tmp/$1.svg" -o "tray/$1.png"
  rsvg-convert -w 64 -h 64 "$tmp/$1.svg" -o "tray/$1@2x.png"
}
tray idle '#ffffff' 'none'
tray busy '#ffffff' '#3fb950'
tray attention '#ffffff' '#d29922'
tray macos-template '#000000' 'none'
echo "icons: $(find . -name '*.png' -o -name '*.ico' -o -name '*.icns' | wc -l) files"
