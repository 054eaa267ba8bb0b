#!/usr/bin/env bash
# SPDX-License-Identifier: BSL-1.0
# Builds the libFuzzer targets (tests/fuzz/*_fuzz.cpp) with clang and runs each: first a replay of
# its seed corpus (tests/fuzz/corpus/<name>/, kept small in the repository), then SECONDS of
# fuzzing from it. New inputs go to a scratch copy under build/fuzz/, never into the repository;
# a crash leaves its input there (crash-*) and fails the run.
#
#   tests/fuzz/run.sh            30 s each (what .ci/run does)
#   tests/fuzz/run.sh 3600       an hour each
#   tests/fuzz/run.sh 0          build and replay the seeds only
#
# Needs clang with libFuzzer: Debian's clang-14 and libclang-rt-14-dev (scripts/setup installs
# them); CXX_FUZZ=clang++-NN picks another. Uses one core (-jobs is not used).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."

seconds=${1:-30}
[[ "$seconds" =~ ^[0-9]+$ ]] || { echo "fuzz: SECONDS must be a whole number, got '$seconds'" >&2; exit 2; }
cxx=${CXX_FUZZ:-}
if [[ -z "$cxx" ]]; then
  for c in clang++-14 clang++; do
    if command -v "$c" >/dev/null 2>&1; then cxx=$c; break; fi
  done
fi
[[ -n "$cxx" ]] || { echo "fuzz: no clang++ found (scripts/setup installs clang-14)" >&2; exit 1; }

out=build/fuzz
mkdir -p "$out"
status=0
for src in tests/fuzz/*_fuzz.cpp; do
  name=$(basename "$src" _fuzz.cpp)    # midi_parser, midi_smf
  seeds=tests/fuzz/corpus/${name#midi_}  # parser, smf
  exe=$out/${name}_fuzz
  echo "== fuzz: ${name}: build ($cxx)"
  "$cxx" -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -Iinclude "$src" -o "$exe"
  echo "== fuzz: ${name}: replay $(ls "$seeds" | wc -l) seeds"
  "$exe" -runs=0 "$seeds"/* >"$out/${name}-replay.log" 2>&1 || { tail -30 "$out/${name}-replay.log"; status=1; continue; }
  ((seconds > 0)) || continue
  work=$out/corpus-${name#midi_}
  mkdir -p "$work"
  cp -n "$seeds"/* "$work"/ 2>/dev/null || true
  echo "== fuzz: ${name}: ${seconds} s"
  if "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
      -artifact_prefix="$out/${name}-" "$work" >"$out/${name}.log" 2>&1; then
    grep -E '^(stat::number_of_executed_units|stat::peak_rss_mb)' "$out/${name}.log" | tr '\n' ' '
    echo "(corpus: $(ls "$work" | wc -l) inputs)"
  else
    echo "fuzz: ${name} found a problem; its input is in $out/${name}-crash-* (or leak-*, timeout-*):" >&2
    grep -E 'ERROR|SUMMARY|==[0-9]+==|Test unit written' "$out/${name}.log" | head -20 >&2
    status=1
  fi
done
exit $status
