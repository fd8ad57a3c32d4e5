#!/usr/bin/env bash
# Two versions of the package side by side, alternating, two rounds: the layout change of issue 11
# (6a3a393, flat modules) against main (sub-packages). Each side needs its own environment:
#   git worktree add --detach ../before 6a3a393 && python3 -m venv ../before/.venv \
#     && ../before/.venv/bin/pip install -e "../before[cpu]"
#   BEFORE=../before/.venv/bin/gluon-modern-cnn AFTER=.venv/bin/gluon-modern-cnn \
#     bash benchmarks/layout_change_ab.sh
# Records go to benchmarks/results/$NAME-{before,after}.jsonl (NAME defaults to layout-change;
# run-plan for the second step, 2e35137 against the run plan). See docs/benchmarks.md.
set -u
cd "$(dirname "$0")/.."
DATA="${DATA:-../shared/data/fashion-mnist}"
NAME="${NAME:-layout-change}"
for round in 1 2; do
  for side in before after; do
    if [ "$side" = before ]; then BIN="$BEFORE"; else BIN="$AFTER"; fi
    OUT="benchmarks/results/$NAME-$side.jsonl"
    "$BIN" bench lenet_bn --preset book --data real --data-root "$DATA" --no-peak --repeats 5 --out "$OUT"
    "$BIN" bench lenet_bn_hybrid --preset fast --data real --data-root "$DATA" --no-peak --repeats 5 --out "$OUT"
    "$BIN" bench resnet18_hybrid --preset fast --data real --data-root "$DATA" --batch-size 64 \
      --steps 2 --no-peak --repeats 5 --out "$OUT"
  done
done
