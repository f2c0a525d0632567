#!/usr/bin/env bash
# Barcodes: what reading them adds to a query with no barcode on the photo (the `barcode` stage of
# `shadematch bench`, on 1280x960 kiosk frames), what a barcode photo costs, and how the photos are answered.
# Run alone on the machine.
#
# Usage: benchmarks/barcode/run.sh WORK_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work=$1
python "$here/make_set.py" "$work"
shadematch build --catalog "$work/catalog.csv" --out "$work/bundle" --force --quiet
for set in bare barcode; do
    shadematch bench --bundle "$work/bundle" --queries "$work/$set" --threads 2 --repeats 40 --throughput-rounds 0 \
        --report "$here" --note "demo catalogue with GTINs; 20 generated 1280x960 kiosk frames ($set)" > /dev/null
    mv "$here/bench.json" "$here/bench_$set.json" && mv "$here/bench.md" "$here/bench_$set.md"
done
python "$here/rate.py" "$work/bundle" "$work" > "$here/rate.json"
grep -h "| barcode\|| total" "$here"/bench_*.md; cat "$here/rate.json"
