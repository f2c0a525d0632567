#!/usr/bin/env bash
# Reading the label on Grocery Store val: the default bundle of each protocol (labels read on every catalogue image),
# scored by `shadematch eval` with OCR on; the same report holds the figures without the words (`ocr_off`), from the
# same model pass. Build and evaluation times are recorded, reading included.
#
# Usage: benchmarks/grocery/labels.sh LABEL CSV_DIR WORK_DIR [extra build options...]
#   CSV_DIR from benchmarks/grocery/prepare.py; raw eval JSON lands in benchmarks/grocery/results/LABEL_PROTOCOL.json
set -euo pipefail
label=$1 csv=$2 work=$3
shift 3
results="$(dirname "$0")/results"
mkdir -p "$results" "$work"
for protocol in instore iconic; do
    bundle="$work/$label-$protocol"
    start=$(date +%s.%N)
    shadematch build --catalog "$csv/${protocol}_catalog.csv" --out "$bundle" --force --no-pictures --workers 2 \
        --work-dir "$work/$label-$protocol-shards" "$@"
    built=$(date +%s.%N)
    shadematch eval --bundle "$bundle" --queries "$csv/val_queries.csv" --json > "$results/${label}_${protocol}.json"
    end=$(date +%s.%N)
    python3 - "$results/${label}_${protocol}.json" "$start" "$built" "$end" "$csv/${protocol}_catalog.csv" <<'PY'
import json, sys
path, start, built, end, catalogue = sys.argv[1], *map(float, sys.argv[2:5]), sys.argv[5]
report = json.load(open(path))
images = sum(1 for _ in open(catalogue, encoding="utf-8")) - 1
report["build_seconds"] = round(built - start, 1)
report["catalogue_images"] = images
report["eval_seconds"] = round(end - built, 1)
json.dump(report, open(path, "w"), indent=2)
on, off = report, report["ocr_off"]
print(f"{path}: build {report['build_seconds']} s for {images} images ({images / report['build_seconds']:.1f} images/s, "
      f"reading included), eval {report['eval_seconds']} s; {report['ocr']['photos_with_text']} of {report['queries']} "
      f"photos gave text")
for name in sorted(on["subsets"]):
    a, b = on["subsets"][name], off["subsets"][name]
    print(f"  {name:10} OCR on: mAP@7 {a['map7']:.3f} top-1 {a['products']['top1']:.3f} | "
          f"off: mAP@7 {b['map7']:.3f} top-1 {b['products']['top1']:.3f}")
PY
done
