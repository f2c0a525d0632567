"""The standalone executable: packaging/build.sh builds it from a clean venv, it holds no offline
libraries, and with an empty environment (`env -i`: no venv, no PYTHONPATH) it answers `query` exactly as
the Python API does, finds a bundle placed beside it, and serves the kiosk.

The slowest test of the suite (a venv install and a PyInstaller run, ~1.5 min the first time; the
build venv in build/package-venv is reused by later runs)."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from runtime import Retriever
from runtime.kiosk.client import KioskClient

from .conftest import ROOT

pytestmark = pytest.mark.slow

DIST = ROOT / "dist" / "shadematch"
EXECUTABLE = DIST / "shadematch"
OFFLINE_LIBRARIES = ("torch", "sklearn", "scipy", "export")


@pytest.fixture(scope="module")
def executable() -> Path:
    if shutil.which("python3") is None:
        pytest.skip("packaging/build.sh needs python3 on PATH")
    done = subprocess.run([str(ROOT / "packaging" / "build.sh")], capture_output=True, text=True, timeout=1200)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert EXECUTABLE.is_file()
    return EXECUTABLE


def _clean_run(*argv: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run with an empty environment, as on a kiosk with no Python."""
    return subprocess.run(["env", "-i", *argv], capture_output=True, text=True, timeout=120, cwd=cwd)


def test_build_holds_no_offline_libraries(executable: Path) -> None:
    internal = executable.parent / "_internal"
    top_level = {path.name.split(".")[0].split("-")[0] for path in internal.iterdir()}
    assert not top_level & set(OFFLINE_LIBRARIES), sorted(top_level)
    assert not list(internal.rglob("libtorch*")) and (internal / "onnxruntime").is_dir()
    assert (internal / "runtime" / "kiosk" / "static" / "index.html").is_file()
    # Pure-Python modules live in the PYZ archive: its table of contents names every one.
    archived = (ROOT / "build" / "pyinstaller-onedir" / "shadematch" / "PYZ-00.toc").read_text()
    assert "'runtime.kiosk.server'" in archived and "'waitress'" in archived
    for name in OFFLINE_LIBRARIES:
        assert f"'{name}'" not in archived and f"'{name}." not in archived, name


def test_query_answers_like_the_python_api(executable: Path, demo_bundle: Path, demo_queries: list[Path]) -> None:
    photos = [str(photo) for photo in demo_queries[:4]]
    done = _clean_run(str(executable), "query", "--bundle", str(demo_bundle), *photos, "--json", cwd=Path("/"))
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)["results"]
    with Retriever.open(demo_bundle) as retriever:
        expected = retriever.query_batch(photos)
    assert [r["image"] for r in results] == photos
    for result, matches in zip(results, expected):
        assert [m["product"]["id"] for m in result["matches"]] == [m.id for m in matches]
        assert [m["stage"] for m in result["matches"]] == [m.stage for m in matches]
        assert [m["score"] for m in result["matches"]] == pytest.approx([m.score for m in matches], abs=1e-4)


def test_the_executable_reads_barcodes(executable: Path, gtin_bundle: Path, tmp_path: Path) -> None:
    """zxing-cpp is in the base install, so in the build: a barcode photo is answered by its GTIN."""
    from tests.barcode_photos import FEW, PACKAGES, group_of, photos

    photo = tmp_path / "barcode.jpg"
    photos(FEW)[0].save(photo, quality=92)
    done = _clean_run(str(executable), "query", "--bundle", str(gtin_bundle), str(photo), "--json", cwd=Path("/"))
    assert done.returncode == 0, done.stderr
    first = json.loads(done.stdout)["results"][0]["matches"][0]
    assert (first["stage"], first["confidence"], first["product"]["group"]) == ("barcode", 1.0, group_of(PACKAGES[0]))


def test_info_and_a_clear_error(executable: Path, demo_bundle: Path, tmp_path: Path) -> None:
    done = _clean_run(str(executable), "info", "--bundle", str(demo_bundle), "--json")
    assert done.returncode == 0 and json.loads(done.stdout)["catalog"]["items"] == 24
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    done = _clean_run(str(executable), "query", "--bundle", str(demo_bundle), str(broken))
    assert done.returncode == 1 and "truncated or corrupt" in done.stderr and "Traceback" not in done.stderr


def test_bench_runs_in_the_executable(executable: Path, demo_bundle: Path) -> None:
    done = _clean_run(str(executable), "bench", "--bundle", str(demo_bundle), "--json", "--repeats", "2", "--threads", "1")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["bundle"]["items"] == 24 and report["total"]["p50_ms"] > 0


def test_bundle_beside_the_executable(executable: Path, demo_bundle: Path, demo_queries: list[Path], tmp_path: Path) -> None:
    installed = tmp_path / "kiosk"
    shutil.copytree(executable.parent, installed, symlinks=True)
    done = _clean_run(str(installed / "shadematch"), "query", str(demo_queries[0]), "--json")
    assert done.returncode == 1 and "no --bundle given" in done.stderr
    shutil.copytree(demo_bundle, installed / "bundle")
    done = _clean_run(str(installed / "shadematch"), "query", str(demo_queries[0]), "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["results"][0]["matches"]) == 7


def test_executable_serves_the_kiosk(executable: Path, demo_bundle: Path, demo_queries: list[Path]) -> None:
    process = subprocess.Popen(
        ["env", "-i", str(executable), "kiosk", "--bundle", str(demo_bundle), "--port", "0", "--workers", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        line = process.stdout.readline()
        assert line.startswith("shadematch kiosk: serving"), line + (process.stderr.read() if process.poll() is not None else "")
        client = KioskClient(line.split(" on ")[-1].strip())
        reply = client.query(demo_queries[0].read_bytes())
        assert reply.status == 200 and len(reply.json()["matches"]) == 7
        assert client.request("GET", "/").status == 200
    finally:
        process.terminate()
        process.wait(timeout=10)
