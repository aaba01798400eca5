#!/usr/bin/env bash
# Report 1 reproduction on real A-shares (../shared/data or $DEEPFACTOR_CN_DATA):
# GRU and DecompGRU x IC and MSE losses, yearly rolling windows, then one backtest report.
# CPU scale by default (configs/cn_cpu_scale.yaml; docs/reproduction.md states it).
# Full scale (e.g. on a GPU; all-market training, every training day every epoch, early
# stopping, 3 seeds):
#   SCALE="--config configs/protocol.yaml --trainer.precision=bf16-mixed" SEEDS=[0,42,3407] \
#   YEARS=[2016,2017,2018,2019] OUT=runs/cn_full bash scripts/reproduce_cn.sh
# Then the docs page: python scripts/results_page.py --report $OUT/report \
#   --experiments $OUT/experiments/* --intro scripts/reproduction_intro.md \
#   --out docs/reproduction.md --img docs/img/reproduction
set -euo pipefail
YEARS=${YEARS:-[2017,2018,2019]}
SEEDS=${SEEDS:-[0]}
SCALE=${SCALE:---config configs/cn_cpu_scale.yaml}
OUT=${OUT:-runs/cn_reproduction}
MODELS=${MODELS:-"decompgru_ic gru_ic decompgru_mse gru_mse"}
for model in $MODELS; do
  python main.py rolling --config "configs/${model}.yaml" --config configs/cn_shared.yaml $SCALE \
    --rolling.name="$model" --rolling.out_dir="$OUT/experiments" \
    --rolling.test_years="$YEARS" --rolling.seeds="$SEEDS" --rolling.val_months=12 \
    --trainer.enable_progress_bar=false
done
factors=()
for model in $MODELS; do factors+=("$OUT/experiments/$model/factor.parquet"); done
python -m backtest report --factors "${factors[@]}" --data cn_shared --cache-dir .cache/panels \
  --out "$OUT/report"
