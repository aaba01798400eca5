#!/usr/bin/env bash
# Issue 3's recorded experiment: GRU-IC and DecompGRU-IC on the synthetic market, test
# years 2017-2019 x seeds 0/42/3407, at a CPU scale (5 epochs x 60 random training days;
# docs/rolling.md gives the measured results), then one backtest report of both.
set -euo pipefail
OUT=${OUT:-runs/rolling_synthetic}
SCALE=${SCALE:---trainer.max_epochs=5 --trainer.limit_train_batches=60}
for model in gru_ic decompgru_ic; do
  python main.py rolling --config "configs/${model}.yaml" $SCALE \
    --rolling.out_dir="$OUT/experiments" --rolling.test_years=[2017,2018,2019] \
    --rolling.seeds=[0,42,3407] --rolling.val_months=6 --trainer.enable_progress_bar=false
done
python -m backtest report --factors "$OUT"/experiments/{gru_ic,decompgru_ic}/factor.parquet \
  --data auto --out "$OUT/report"
