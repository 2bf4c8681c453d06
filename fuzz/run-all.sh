#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) each, two at a time, and prints each one's
# executions and corpus size. Needs cargo-fuzz (`cargo install cargo-fuzz`); on a stable
# toolchain RUSTC_BOOTSTRAP=1 lets it use the sanitizer flags.
set -uo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
export RUSTC_BOOTSTRAP=1
cargo fuzz build -O >/dev/null
mkdir -p logs
targets=$(cargo fuzz list)
run() {
  local t=$1
  mkdir -p "corpus/$t"
  nice -n 10 cargo fuzz run -O "$t" "corpus/$t" -- -max_total_time="$seconds" -timeout=10 \
    -rss_limit_mb=2048 -print_final_stats=1 >"logs/$t.log" 2>&1
  local status=$?
  local execs size
  execs=$(grep -m1 'stat::number_of_executed_units' "logs/$t.log" | awk '{print $2}')
  size=$(ls "corpus/$t" | wc -l)
  echo "$t: exit $status, $execs executions, corpus $size inputs"
}
set -- $targets
while [ $# -gt 0 ]; do
  run "$1" & first=$!
  if [ $# -gt 1 ]; then run "$2" & second=$!; wait $second; shift; fi
  wait $first
  shift
done
