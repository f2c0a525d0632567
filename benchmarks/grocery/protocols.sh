#!/usr/bin/env bash
# Both Grocery Store protocols for one visual model, built and scored with the shipped commands only:
# `shadematch build` (descriptor as it is, then adapted to the catalogue: the default) and `shadematch eval`.
# The second build of a protocol reuses the first one's feature shards (--work-dir), so the CNN runs once per
# catalogue image; the catalogue-only adapted build still runs it on its store-like views.
#
# Usage: benchmarks/grocery/protocols.sh MODEL.onnx LABEL CSV_DIR WORK_DIR [extra build options...]
#   CSV_DIR from benchmarks/grocery/prepare.py; raw eval JSON lands in benchmarks/grocery/results/LABEL_*.json
set -euo pipefail
model=$1 label=$2 csv=$3 work=$4
shift 4
results="$(dirname "$0")/results"
mkdir -p "$results" "$work"
for protocol in instore iconic; do
    for projection in none adapted; do
        bundle="$work/$label-$protocol-$projection"
        start=$(date +%s.%N)
        shadematch build --catalog "$csv/${protocol}_catalog.csv" --out "$bundle" --model "$model" --force --quiet \
            --no-pictures --projection "$projection" --workers 2 --work-dir "$work/$label-$protocol-shards" "$@"
        end=$(date +%s.%N)
        shadematch eval --bundle "$bundle" --queries "$csv/val_queries.csv" --json > "$results/${label}_${protocol}_${projection}.json"
        python3 - "$results/${label}_${protocol}_${projection}.json" "$start" "$end" <<'EOF'
import json, sys
path, start, end = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
report = json.load(open(path))
report["build_seconds"] = round(end - start, 1)
json.dump(report, open(path, "w"), indent=2)
p = report["subsets"]["Packages"]
print(f"{path}: k={report['k']} vote={report['vote']} map7 {report['map7']:.3f} (Packages {p['map7']:.3f}) "
      f"top1 {report['top1']:.3f} (Packages {p['top1']:.3f}) visual {report['map7_visual']:.3f} "
      f"k1 {report['ablation']['1']['map7']:.3f} k3 {report['ablation']['3']['map7']:.3f} build {report['build_seconds']} s")
EOF
    done
done
