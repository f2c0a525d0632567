"""`import shadematch`: the documented entry point of the Python API, cheap to import, loud on a name clash."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import shadematch

ROOT = Path(__file__).resolve().parents[1]


def _python(code: str, *path: Path) -> subprocess.CompletedProcess[str]:
    """A fresh interpreter with ``path`` ahead of this worktree on its import path (run elsewhere: the working
    directory comes first on the path of `python -c`)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([*map(str, path), str(ROOT)])}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                          cwd=ROOT.parent)


def test_the_public_api_queries_a_bundle(demo_bundle: Path, demo_queries: list[Path]) -> None:
    with shadematch.Retriever.open(demo_bundle) as retriever:
        matches = retriever.query(demo_queries[0])
    assert len(matches) == 7 and all(isinstance(m, shadematch.Match) for m in matches)
    assert demo_queries[0].name.startswith(matches[0].group.lower())
    assert issubclass(shadematch.BundleError, shadematch.ShadematchError)
    assert shadematch.__version__ == __import__("runtime").__version__
    assert set(shadematch.__all__) <= set(dir(shadematch)) | {"Retriever", "Match", "Answer"}


def test_import_does_not_load_the_inference_stack() -> None:
    done = _python("import sys, shadematch\n"
                   "print(sorted(m for m in ('onnxruntime', 'numpy', 'runtime.retriever') if m in sys.modules))")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_another_package_named_runtime_is_refused_by_name(tmp_path: Path) -> None:
    impostor = tmp_path / "runtime"
    impostor.mkdir()
    (impostor / "__init__.py").write_text("VERSION = '9'\n")
    done = _python("import shadematch", tmp_path)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: shadematch: the package 'runtime' found at")
    assert str(impostor / "__init__.py") in last and "shadows it" in last


def test_python_dash_m_runs_the_command() -> None:
    done = subprocess.run([sys.executable, "-m", "shadematch", "--version"], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert shadematch.__version__ in done.stdout
