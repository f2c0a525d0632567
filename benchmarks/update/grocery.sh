#!/usr/bin/env bash
# A living catalogue on real images: the Grocery Store in-store catalogue without its 81 iconic images, updated
# with them, against the bundle built from the same final catalogue (same row order) at once; both scored on val.
#
# Usage: benchmarks/update/grocery.sh CSV_DIR WORK_DIR
#   CSV_DIR: instore_minus_iconic.csv, iconic_add.csv, instore_update_order.csv (the first two in that order) and
#   val_queries.csv (benchmarks/grocery/prepare.py; the three splits are a few lines of csv from instore_catalog.csv)
set -euo pipefail
csv=$1 work=$2
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$work"
shadematch build --catalog "$csv/instore_minus_iconic.csv" --out "$work/base" --force --quiet --no-pictures --workers 2
start=$(date +%s.%N)
shadematch update --bundle "$work/base" --add "$csv/iconic_add.csv" --out "$work/updated" --force --quiet --json \
    > "$here/grocery_update.json"
end=$(date +%s.%N)
shadematch build --catalog "$csv/instore_update_order.csv" --out "$work/rebuilt" --force --quiet --no-pictures --workers 2
for b in updated rebuilt; do
    shadematch eval --bundle "$work/$b" --queries "$csv/val_queries.csv" --json > "$here/grocery_eval_$b.json"
done
python3 - "$here" "$start" "$end" "$work" "$csv/val_queries.csv" <<'PY'
import json, sys
from pathlib import Path
from runtime.retriever import Retriever
from runtime.tools.evaluate import read_queries
here, start, end, work, queries = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), Path(sys.argv[4]), Path(sys.argv[5])
update = json.load(open(f"{here}/grocery_update.json"))
update["wall_s"] = round(end - start, 1)
photos = [q.image for q in read_queries(queries)]
firsts = {}
for name in ("updated", "rebuilt"):
    with Retriever.open(work / name) as retriever:
        firsts[name] = [answer.matches[0].group for answer in retriever.answer(photos)]  # the product first
update["same_top1_share"] = sum(a == b for a, b in zip(firsts["updated"], firsts["rebuilt"])) / len(photos)
json.dump(update, open(f"{here}/grocery_update.json", "w"), indent=2)
a, b = (json.load(open(f"{here}/grocery_eval_{n}.json")) for n in ("updated", "rebuilt"))
print(f"update: {update['wall_s']} s for {update['added']} images; same first product for "
      f"{update['same_top1_share']:.3f} of the val photos; "
      f"top-1 updated {a['top1']:.4f} vs rebuilt {b['top1']:.4f}; mAP@7 {a['map7']:.4f} vs {b['map7']:.4f}; "
      f"Packages top-1 {a['subsets']['Packages']['products']['top1']:.3f} vs {b['subsets']['Packages']['products']['top1']:.3f}")
PY
