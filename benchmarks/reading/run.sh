#!/usr/bin/env bash
# Reading the label: its latency per stage at a 1280 px photo and what it adds to a query (`shadematch bench`
# times the query with and without reading, on the same photos, in one run), and the rate of reading the
# catalogue at build time. Run alone on the machine.
#
# Usage: benchmarks/reading/run.sh WORK_DIR
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
work=$1
mkdir -p "$work"
python "$here/make_photos.py" "$work"
shadematch build --catalog "$here/../../export/demo/catalog.csv" --out "$work/demo" --force --quiet
shadematch build --catalog "$work/shades/catalog.csv" --out "$work/shades-bundle" --force --quiet --no-pictures
shadematch bench --bundle "$work/demo" --queries "$work/grocery-1280" --threads 2 --repeats 40 --report "$here" \
    --note "Grocery demo photos scaled to 1280 px; the label read with 2 threads" > /dev/null
mv "$here/bench.json" "$here/bench_grocery_1280.json" && mv "$here/bench.md" "$here/bench_grocery_1280.md"
shadematch bench --bundle "$work/shades-bundle" --queries "$work/shades-1280" --threads 2 --repeats 40 --report "$here" \
    --note "generated look-alike lipsticks, 1280 px store-like photos; the label read with 2 threads" > /dev/null
mv "$here/bench.json" "$here/bench_shades_1280.json" && mv "$here/bench.md" "$here/bench_shades_1280.md"
grep -h "adds" "$here"/bench_*_1280.md
