"""A kiosk's base install (no torch, no scikit-learn, no `export`) can query a bundle.

The check runs in a fresh interpreter whose import system refuses those packages, so any import of them
anywhere on the query path fails the test.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

_GUARD = """
import importlib.abc, sys
BLOCKED = {"torch", "sklearn", "export", "onnx", "scipy"}
class Refuse(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: base install)", name=name)
sys.meta_path.insert(0, Refuse())
"""
_REPORT = """
loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
print("LOADED", loaded, file=sys.stderr)
"""
_CLI = _GUARD + """
from runtime.cli import main
code = main(sys.argv[1:])
""" + _REPORT + "sys.exit(code)\n"
# The kiosk server, started and asked over HTTP, with the same import guard.
_KIOSK = _GUARD + """
from runtime import Retriever
from runtime.kiosk import KioskServer
from runtime.kiosk.client import KioskClient
with KioskServer(Retriever.open(sys.argv[1]), port=0, workers=1) as server:
    server.start()
    reply = KioskClient(server.url).query(open(sys.argv[2], "rb").read())
    print(reply.status, len(reply.json()["matches"]))
""" + _REPORT


def _run(*argv: str, script: str = _CLI) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, timeout=120)


def test_query_without_offline_packages(demo_bundle: Path, demo_queries: list[Path]) -> None:
    done = _run("query", "--bundle", str(demo_bundle), str(demo_queries[0]), "--json")
    assert done.returncode == 0, done.stderr
    assert len(json.loads(done.stdout)["results"][0]["matches"]) == 7
    assert "LOADED []" in done.stderr


def test_bench_without_offline_packages(demo_bundle: Path) -> None:
    done = _run("bench", "--bundle", str(demo_bundle), "--json", "--repeats", "2", "--threads", "1",
                "--throughput-rounds", "0")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["stages"]["visual_model"]["p50_ms"] > 0
    assert "LOADED []" in done.stderr


def test_offline_command_says_which_extra_to_install(tmp_path: Path) -> None:
    done = _run("build", "--catalog", "c.csv", "--out", str(tmp_path / "b"))
    assert done.returncode == 1
    assert "pip install 'shadematch[export]'" in done.stderr


def test_kiosk_without_offline_packages(demo_bundle: Path, demo_queries: list[Path]) -> None:
    done = _run(str(demo_bundle), str(demo_queries[0]), script=_KIOSK)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["200", "7"]
    assert "LOADED []" in done.stderr
