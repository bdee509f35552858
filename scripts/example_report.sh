#!/usr/bin/env bash
# The example report that README.md and docs/report.md show, made from real runs (no weights, no data):
# tiny random ViTs (demo_vit in three sizes) × frozen, LoRA, CNN adapter, full fine-tuning on the synthetic
# dataset, plus a LoRA-rank sweep, then `densebench report`. About 10-20 minutes on 2 CPU cores.
#   scripts/example_report.sh [OUT]      # runs and report under OUT (default example-report/)
# With DOCS_IMAGES=docs/images it also copies the figures the docs show there.
set -euo pipefail
OUT=${1:-example-report}
RUNS="$OUT/runs"
small=(dataset=synthetic dataset.n_train=8 dataset.n_val=2 dataset.n_test=4 dataset.min_size=48 dataset.max_size=72
       dataset.min_side=48 train.epochs=2 train.batch_size=4 eval.bootstrap.n=200 progress=none
       decoder.stem_channels=32 "decoder.channels=[16,16,8,8]" "output_dir=$RUNS")
# A sweep exits 1 if a cell failed; the report then lists the failure, so go on.
densebench run -m "${small[@]}" model.variant=tiny,full adapter=frozen,lora,cnn,full || true
densebench run -m "${small[@]}" model.arch.depth=2 adapter=frozen,lora,cnn,full || true
densebench run -m "${small[@]}" model.variant=tiny adapter=lora adapter.rank=4,8,32 || true
densebench report "$RUNS" --out "$OUT/report"
if [[ -n "${DOCS_IMAGES:-}" ]]; then
  mkdir -p "$DOCS_IMAGES"
  for figure in strategy_boxplots_runs scaling_runs rank_ablation cd_runs_models; do
    if [[ -f "$OUT/report/plots/$figure.png" ]]; then cp "$OUT/report/plots/$figure.png" "$DOCS_IMAGES/example_$figure.png"; fi
  done
fi
