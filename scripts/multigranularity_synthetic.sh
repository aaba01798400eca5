#!/usr/bin/env bash
# Issue 6's experiment (docs/multigranularity.md): every multi-granularity variant and the
# daily GRU on the synthetic market (300 stocks), then the output ensembles per seed.
# SEEDS="0 1 2" for three seeds (about 20 minutes each on 2 CPU cores).
set -euo pipefail
SEEDS=${SEEDS:-0}
OUT=${OUT:-runs/multigranularity}
ROOT=$(pwd)
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
for seed in $SEEDS; do
  for c in gru_daily_mse bi_agru_daily_mse gru_60min_mse gru_30min_mse mixed_gru_mse \
      mixed_bi_agru_mse mgrl_mse; do
    dir="$OUT/$c/seed$seed"
    if ls "$dir"/runs/factors/*.parquet >/dev/null 2>&1; then continue; fi
    mkdir -p "$dir"
    (cd "$dir" && python "$ROOT/main.py" fit --config "$ROOT/configs/$c.yaml" \
      --seed_everything="$seed" --data.market.n_stocks=300 --data.window=60 \
      --data.intraday_days=10 --trainer.max_epochs=6 --trainer.logger=false \
      --trainer.enable_progress_bar=false) > "$dir/fit.log" 2>&1
  done
  f() { ls "$OUT/$1/seed$2"/runs/factors/*.parquet; }
  python -m backtest ensemble --out "$OUT/ensemble_all3_seed$seed.parquet" \
    $(f gru_daily_mse "$seed") $(f gru_60min_mse "$seed") $(f gru_30min_mse "$seed")
  python -m backtest ensemble --out "$OUT/ensemble_daily_30min_seed$seed.parquet" \
    $(f gru_daily_mse "$seed") $(f gru_30min_mse "$seed")
done
