#!/usr/bin/env bash
# The search that chose configs/cn_cpu.yaml (docs/reproduction.md, "How the CPU protocol
# was chosen"): DecompGRU-IC, whole market, seed 0, on the 2016 window only, compared by
# its VALIDATION Rank IC (the 12 months of 2015, the best epoch's value): no test year is
# looked at. Every arm spends about the same training budget (2,000 day-steps of the whole
# market, or the same stock count in more days for the half-stock arm).
#   OUT=~/deepfactor-runs/cn_cpu_search bash scripts/cn_cpu_search.sh
# then: python scripts/search_table.py $OUT   (prints the table of docs/reproduction.md)
set -euo pipefail
OUT=${OUT:-runs/cn_cpu_search}
ARMS=${ARMS:-"A B C"}
for arm in $ARMS; do
  case $arm in
    A) extra=(--trainer.max_epochs=10 --trainer.limit_train_batches=200) ;;           # lr 1e-3
    B) extra=(--trainer.max_epochs=10 --trainer.limit_train_batches=200
              --model.init_args.optimizer.init_args.lr=0.0005) ;;
    C) extra=(--trainer.max_epochs=10 --trainer.limit_train_batches=400
              --data.init_args.train_stock_fraction=0.5) ;;
    *) echo "unknown arm $arm" >&2; exit 2 ;;
  esac
  python main.py rolling --config configs/decompgru_ic.yaml --config configs/cn_shared.yaml \
    --config configs/cn_cpu.yaml "${extra[@]}" \
    --rolling.name="arm_$arm" --rolling.out_dir="$OUT" \
    --rolling.test_years=[2016] --rolling.seeds=[0] --rolling.val_months=12 \
    --trainer.enable_progress_bar=false
done
