#!/usr/bin/env bash
# Points Claude Desktop (macOS, Linux, WSL) at a MoE Sovereign gateway.
#
#   installers/setup-claude-desktop.sh
#
# Asks for the gateway URL and the API key (the key is read without echo), or takes them from
# MOE_SOVEREIGN_URL / MOE_SOVEREIGN_API_KEY (never from arguments: process lists leak them).
# MOE_SOVEREIGN_YES=1 answers yes to every confirmation.
#
# What it does: checks GET /v1/models with the key (200 → go on, 401 → wrong key, no answer →
# says so), then — when `moe-sovereign` is on PATH — hands the merge to `moe-sovereign wire
# claude-desktop` (byte-preserving merge, credential helper, undo with `unwire`). Otherwise it
# merges the keys itself with python3: a file that does not parse is refused and left alone, a
# timestamped backup is written next to each changed file, every other setting is kept, files
# are written atomically with mode 0600, and the key is never printed.
set -euo pipefail

say() { printf '%s\n' "$*" >&2; }
die() { say "setup-claude-desktop: $*"; exit 1; }

confirm() {
  [ "${MOE_SOVEREIGN_YES:-0}" = 1 ] && return 0
  [ -t 0 ] || die "$1 — no terminal to ask; set MOE_SOVEREIGN_YES=1 to proceed"
  local answer
  read -r -p "$1 [y/N] " answer
  case "$answer" in y | Y | yes | YES) return 0 ;; *) return 1 ;; esac
}

# --- where Claude Desktop keeps its files -------------------------------------------------
platform() {
  case "$(uname -s)" in
    Darwin) echo macos ;;
    Linux)
      if [ -n "${WSL_DISTRO_NAME:-}" ] || grep -qi microsoft /proc/sys/kernel/osrelease 2>/dev/null; then
        echo wsl
      else
        echo linux
      fi
      ;;
    *) die "unsupported system $(uname -s); on Windows use setup-claude-desktop.ps1" ;;
  esac
}

# Prints two lines: the Claude folder and the Claude-3p folder.
claude_folders() {
  case "$1" in
    macos)
      printf '%s\n' "$HOME/Library/Application Support/Claude" "$HOME/Library/Application Support/Claude-3p"
      ;;
    linux)
      local base="${XDG_CONFIG_HOME:-$HOME/.config}"
      printf '%s\n' "$base/Claude" "$base/Claude-3p"
      ;;
    wsl)
      local profile="${USERPROFILE:-}"
      case "$profile" in
        /*) ;;
        *)
          profile="$(cmd.exe /c 'echo %USERPROFILE%' 2>/dev/null | tr -d '\r')" || true
          [ -n "$profile" ] && profile="$(wslpath -u "$profile")"
          ;;
      esac
      [ -n "$profile" ] || die "cannot find the Windows user folder; set USERPROFILE to its /mnt/c/... path"
      printf '%s\n' "$profile/AppData/Roaming/Claude" "$profile/AppData/Local/Claude-3p"
      ;;
  esac
}

# --- inputs ---------------------------------------------------------------------------------
url="${MOE_SOVEREIGN_URL:-}"
if [ -z "$url" ]; then
  if [ -t 0 ]; then
    read -r -p "Gateway URL [http://127.0.0.1:8742]: " url
  fi
  url="${url:-http://127.0.0.1:8742}"
fi
url="${url%/}"
url="${url%/v1}"
case "$url" in
  http://?* | https://?*) ;;
  *) die "the URL must start with http:// or https:// (got: $url)" ;;
esac

delegate=""
if command -v moe-sovereign >/dev/null 2>&1; then
  delegate="$(command -v moe-sovereign)"
fi

key="${MOE_SOVEREIGN_API_KEY:-}"
if [ -z "$key" ] && [ -n "$delegate" ]; then
  key="$("$delegate" credential 2>/dev/null)" || key=""
fi
if [ -z "$key" ]; then
  [ -t 0 ] || die "no key: set MOE_SOVEREIGN_API_KEY (or run interactively)"
  read -r -s -p "API key (moe-sk-..., not shown): " key
  printf '\n' >&2
fi
[ -n "$key" ] || die "no key given"
export MOE_SOVEREIGN_API_KEY="$key"

# --- live check: GET /v1/models with the key ------------------------------------------------
command -v curl >/dev/null 2>&1 || die "curl is needed for the connection check"
# The key goes to curl through a header file on stdin, never through arguments.
status="$(printf 'x-api-key: %s\n' "$key" | curl -sS -o /dev/null -w '%{http_code}' \
  --max-time 10 -H @- "$url/v1/models" 2>/dev/null)" || status=000
case "$status" in
  200) say "gateway at $url accepts the key" ;;
  401) die "the gateway at $url refused the key (401): check it with \`moe-sovereign keys list\`" ;;
  000) die "nothing answers at $url: start the gateway (\`moe-sovereign serve\`) and retry" ;;
  *) die "the gateway at $url answered HTTP $status to GET /v1/models" ;;
esac

# --- merge ------------------------------------------------------------------------------------
if [ -n "$delegate" ]; then
  say "moe-sovereign found at $delegate: it does the merge"
  confirm "Wire Claude Desktop to $url?" || die "nothing changed"
  exec "$delegate" wire claude-desktop --url "$url"
fi

command -v python3 >/dev/null 2>&1 || die "python3 is needed to merge the JSON safely (or install moe-sovereign)"
os="$(platform)"
folders="$(claude_folders "$os")"
normal="$(printf '%s\n' "$folders" | sed -n 1p)"
third="$(printf '%s\n' "$folders" | sed -n 2p)"
say "Claude Desktop files: $normal, $third"
confirm "Wire Claude Desktop to $url (backups are kept next to each file)?" || die "nothing changed"

MOE_URL="$url" MOE_NORMAL="$normal" MOE_THIRD="$third" python3 - <<'PY'
import json, os, sys, tempfile, time

url, key = os.environ["MOE_URL"], os.environ["MOE_SOVEREIGN_API_KEY"]
normal, third = os.environ["MOE_NORMAL"], os.environ["MOE_THIRD"]
profile_id = "6d6f652d-736f-4076-8000-000000008742"

def load(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None, {}
    if not text.strip():
        return text, {}
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        sys.exit(f"setup-claude-desktop: {path}: line {e.lineno}, column {e.colno}: {e.msg} "
                 "(the file was left untouched; fix it and retry)")
    if not isinstance(doc, dict):
        sys.exit(f"setup-claude-desktop: {path}: the top level is not a JSON object (left untouched)")
    return text, doc

def save(path, before, doc):
    text = json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    if before == text:
        return
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    if before is not None:
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        backup = f"{path}.moe-backup-{stamp}"
        with open(os.open(backup, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", encoding="utf-8") as f:
            f.write(before)
        print(f"backup: {backup}", file=sys.stderr)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".moe-", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    print(f"updated {path}", file=sys.stderr)

paths = {
    "seed": os.path.join(normal, "claude_desktop_config.json"),
    "third": os.path.join(third, "claude_desktop_config.json"),
    "meta": os.path.join(third, "configLibrary", "_meta.json"),
    "profile": os.path.join(third, "configLibrary", profile_id + ".json"),
}
# Parse everything first: one broken file stops the whole setup with nothing changed.
loaded = {name: load(path) for name, path in paths.items()}
entries = loaded["meta"][1].get("entries")
if entries is not None and not isinstance(entries, list):
    sys.exit(f"setup-claude-desktop: {paths['meta']}: `entries` is not a list (left untouched)")

before, doc = loaded["seed"]
doc["thirdPartyInference"] = {"type": "gateway", "baseUrl": url, "apiKey": key}
doc["deploymentMode"] = "3p"
save(paths["seed"], before, doc)

before, doc = loaded["third"]
doc["deploymentMode"] = "3p"
save(paths["third"], before, doc)

before, doc = loaded["profile"]
doc.update({
    "inferenceProvider": "gateway",
    "inferenceGatewayBaseUrl": url,
    "inferenceGatewayAuthScheme": "bearer",
    "inferenceGatewayApiKey": key,
    "deploymentDisplayName": "MoE Sovereign",
    "disableEssentialTelemetry": True,
    "disableNonessentialTelemetry": True,
})
save(paths["profile"], before, doc)

before, doc = loaded["meta"]
entries = [e for e in (entries or []) if not (isinstance(e, dict) and e.get("id") == profile_id)]
entries.append({"id": profile_id, "name": "MoE Sovereign"})
doc["appliedId"] = profile_id
doc["entries"] = entries
save(paths["meta"], before, doc)
PY
say "done: quit and reopen Claude Desktop to use $url"
