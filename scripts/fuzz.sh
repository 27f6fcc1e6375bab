#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ and runs each for a fixed number of executions, then
# writes the figures to bench/results/fuzz.md (README "Fuzzing"; fuzz/README.md).
#
#   scripts/fuzz.sh                    # every target, 100000 executions each
#   FUZZ_RUNS=2000 FUZZ_REPORT= scripts/fuzz.sh     # a smoke: figures printed, no report written
#   scripts/fuzz.sh request wiring     # some targets only
#
# Environment:
#   FUZZ_RUNS        executions per target (default 100000)
#   FUZZ_REPORT      where the Markdown report goes (default bench/results/fuzz.md; empty: none)
#   FUZZ_SEED        libFuzzer's -seed (default 0: a random seed, printed in the report)
#   FUZZ_TARGET_DIR  the fuzz build's own target dir (default ~/.cache/moe-sovereign/fuzz-target)
#
# Engine: cargo-fuzz + libFuzzer (libfuzzer-sys) with `--sanitizer none`, on the pinned stable
# toolchain: without a sanitizer cargo-fuzz passes only stable `-C` flags (sanitizer coverage,
# `--cfg fuzzing`, debug assertions and overflow checks), so neither nightly nor RUSTC_BOOTSTRAP is
# needed. The build has its own target dir and RUSTFLAGS, so the main build's artefacts and flags
# (.cargo/config.toml) are never touched. cargo-fuzz is installed once under $MOE_TEST_CACHE/cargo.
#
# Each run starts from the seeds (fuzz/corpus/<target>) and the crashes found so far
# (fuzz/regressions/<target>), read-only; what libFuzzer adds goes to a scratch corpus in the
# target dir. A crash leaves its input under <target dir>/artifacts/<target>/ and fails the
# script after every target ran. Keep it: minimise it (the command is printed), fix the bug, copy
# it to fuzz/regressions/<target>/ (`cargo test -p moe-sovereign-fuzz-harness` replays it).
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
runs="${FUZZ_RUNS:-100000}"
report="${FUZZ_REPORT-bench/results/fuzz.md}"
seed="${FUZZ_SEED:-0}"
target_dir="${FUZZ_TARGET_DIR:-$HOME/.cache/moe-sovereign/fuzz-target}"
cache="${MOE_TEST_CACHE:-$HOME/.cache/moe-sovereign-test}"
all_targets=(request sse openai_chunk wiring gguf)
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")

# Longest input libFuzzer makes, per target: requests up to the size of a real Claude Code
# first turn (fuzz/corpus/request holds one of 76 KB); the other inputs are small by nature.
max_len() {
  case "$1" in
  request) echo 131072 ;;
  *) echo 16384 ;;
  esac
}

# cargo-fuzz, outside the clone, built in its own target dir (removed after).
mkdir -p "$cache"
export PATH="$cache/cargo/bin:$PATH"
if [ "$(cargo fuzz --version 2>/dev/null)" != "cargo-fuzz $CARGO_FUZZ_VERSION" ]; then
  echo "fuzz: installing cargo-fuzz $CARGO_FUZZ_VERSION into $cache/cargo"
  install_start=$SECONDS
  (cd "$cache" && CARGO_TARGET_DIR="$cache/cargo/fuzz-install-target" \
    cargo install -q --locked --root "$cache/cargo" "cargo-fuzz@$CARGO_FUZZ_VERSION")
  rm -rf "$cache/cargo/fuzz-install-target"
  echo "fuzz: cargo-fuzz installed in $((SECONDS - install_start))s"
fi

bin="$target_dir/x86_64-unknown-linux-gnu/release"
build_kind=warm
[ -x "$bin/${targets[0]}" ] || build_kind=cold
echo "fuzz: building ${targets[*]} (target dir $target_dir, $build_kind)"
build_start=$SECONDS
if (($#)); then
  for target in "${targets[@]}"; do
    cargo fuzz build --sanitizer none --target-dir "$target_dir" "$target"
  done
else
  cargo fuzz build --sanitizer none --target-dir "$target_dir"
fi
build_seconds=$((SECONDS - build_start))

work="$target_dir/runs"
rm -rf "$work"
mkdir -p "$work"
# field NAME LINE: the value after `NAME: ` in libFuzzer's status LINE.
field() { sed -nE "s/.* $1: ([^ ]+).*/\1/p" <<<"$2"; }
rows=()
failed=()
for target in "${targets[@]}"; do
  corpus="$work/corpus/$target" artifacts="$work/artifacts/$target/" log="$work/$target.log"
  mkdir -p "$corpus" "$artifacts"
  inputs=("fuzz/corpus/$target")
  [ -d "fuzz/regressions/$target" ] && inputs+=("fuzz/regressions/$target")
  echo "fuzz: $target, $runs executions"
  start=$(date +%s.%N)
  # No -jobs/-workers: libFuzzer then fuzzes in this one process (with -jobs it forks workers
  # that log to files). -timeout bounds one input; a hang is a failure, not a stall.
  status=0
  "$bin/$target" "$corpus" "${inputs[@]}" -runs="$runs" -max_len="$(max_len "$target")" \
    -seed="$seed" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts" >"$log" 2>&1 || status=$?
  end=$(date +%s.%N)
  # The final status line: `#N DONE cov: C ft: F corp: E/S lim: L exec/s: X rss: R`.
  done_line="$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n1 || true)"
  executed="$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+).*/\1/p' "$log" | tail -n1)"
  used_seed="$(sed -nE 's/^INFO: Seed: ([0-9]+).*/\1/p' "$log" | head -n1)"
  crashes=$(find "$artifacts" -type f \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' \
    -o -name 'leak-*' \) | wc -l)
  wall="$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f", b - a }')"
  rate="$(awk -v n="${executed:-0}" -v a="$start" -v b="$end" 'BEGIN { printf "%.0f", n / (b - a) }')"
  rows+=("| \`$target\` | ${executed:-?} | $wall | $rate | $(field corp "$done_line") | $(field cov "$done_line") | $(field ft "$done_line") | $crashes | ${used_seed:-?} |")
  if ((status != 0 || crashes > 0)); then
    failed+=("$target")
    echo "fuzz: $target FAILED (exit $status); log: $log" >&2
    grep -E -A12 "panicked at|ERROR: libFuzzer" "$log" | head -n40 >&2 || true
    for input in "$artifacts"*; do
      [ -f "$input" ] || continue
      echo "  input: $input" >&2
      echo "  minimise: $bin/$target -minimize_crash=1 -runs=10000 -exact_artifact_path=fuzz/regressions/$target/NAME $input" >&2
    done
  fi
done

cpu="$(sed -nE 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)"
cores="$(grep -c '^processor' /proc/cpuinfo)"
libfuzzer="$(sed -nE '/^name = "libfuzzer-sys"$/{n;s/^version = "(.*)"$/\1/p}' fuzz/Cargo.lock)"
table=(
  "| target | executions | wall s | exec/s | corpus (entries/bytes) | cov | ft | crashes | seed |"
  "|---|---:|---:|---:|---|---:|---:|---:|---:|"
  "${rows[@]}"
)
printf '%s\n' "${table[@]}"
if [ -n "$report" ]; then
  {
    echo "# Fuzzing"
    echo
    echo "Written by \`scripts/fuzz.sh\` (FUZZ_RUNS=$runs); the targets are described in"
    echo "\`fuzz/README.md\`. Each run starts from the seeds in \`fuzz/corpus/<target>\` and the crashes"
    echo "found so far in \`fuzz/regressions/<target>\`; a crash is a failure (0 expected)."
    echo
    echo "- date: $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "- host: $cpu, $cores logical CPUs; one libFuzzer process per target, run one after another"
    echo "- toolchain: $(rustc --version) (rust-toolchain.toml), no nightly, no RUSTC_BOOTSTRAP"
    echo "- engine: libFuzzer via libfuzzer-sys $libfuzzer, built by $(cargo fuzz --version)" \
      "with \`--sanitizer none\` (release, debug assertions and overflow checks on; own target dir)"
    echo "- build: ${build_seconds}s ($build_kind target dir; cargo-fuzz already installed)"
    echo "- columns: executions and exec/s over the whole run (seed loading included); cov and ft"
    echo "  (edges and features covered) and corpus from libFuzzer's final \`DONE\` line"
    echo
    printf '%s\n' "${table[@]}"
  } >"$report"
  echo "fuzz: wrote $report"
fi
if ((${#failed[@]})); then
  echo "fuzz: crashes in: ${failed[*]} (inputs under $work/artifacts)" >&2
  exit 1
fi
