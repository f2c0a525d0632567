#!/usr/bin/env bash
# Build the standalone `shadematch` executable (query-time runtime only: no torch, no scikit-learn).
#
#   packaging/build.sh            one folder: dist/shadematch/shadematch (fast start)
#   packaging/build.sh --onefile  one file:   dist/shadematch-onefile (unpacks itself at each start)
#
# It makes (or reuses) a clean venv with only the base install + PyInstaller (extra `package`), so
# nothing from a development venv can get in. SHADEMATCH_BUILD_VENV chooses that venv's folder;
# SHADEMATCH_BUILD_EXTRAS=package,gpu also installs TensorRT + pycuda, which the spec then bundles.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
MODE="onedir"
case "${1:-}" in
    "") ;;
    --onefile) MODE="onefile" ;;
    *) echo "usage: packaging/build.sh [--onefile]" >&2; exit 2 ;;
esac
VENV="${SHADEMATCH_BUILD_VENV:-$ROOT/build/package-venv}"
EXTRAS="${SHADEMATCH_BUILD_EXTRAS:-package}"

if [ ! -x "$VENV/bin/python" ]; then
    python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install -q --disable-pip-version-check "$ROOT[$EXTRAS]"
# The project itself is reinstalled every time so the build always holds the current source.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --force-reinstall "$ROOT"

# The build venv must not hold the offline stage's libraries: refuse rather than ship them.
"$VENV/bin/python" - <<'PY'
import importlib.util, sys
found = [name for name in ("torch", "sklearn", "scipy") if importlib.util.find_spec(name)]
if found:
    sys.exit(f"packaging/build.sh: the build venv has {', '.join(found)}; use a clean SHADEMATCH_BUILD_VENV")
PY

WORK="$ROOT/build/pyinstaller-$MODE"
if [ "$MODE" = "onefile" ]; then
    OUT="$ROOT/build/dist-onefile"
    SHADEMATCH_ONEFILE=1 "$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
        --distpath "$OUT" --workpath "$WORK" "$ROOT/packaging/shadematch.spec"
    mkdir -p "$ROOT/dist"
    mv -f "$OUT/shadematch" "$ROOT/dist/shadematch-onefile"
    echo "built $ROOT/dist/shadematch-onefile ($(du -sh "$ROOT/dist/shadematch-onefile" | cut -f1))"
else
    "$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
        --distpath "$ROOT/dist" --workpath "$WORK" "$ROOT/packaging/shadematch.spec"
    echo "built $ROOT/dist/shadematch/shadematch ($(du -sh "$ROOT/dist/shadematch" | cut -f1))"
fi
