"""No import circle in the tree, and the runtime stays light (issue: the house).

The static graph (tests/import_graph.py) covers every import; the fresh interpreters check the one circle that
existed, runtime.results <-> runtime.retriever, the way Python would meet it.
"""
from __future__ import annotations

import subprocess
import sys

from .import_graph import ROOT, cycles, import_graph, imported_names, project_files

HEAVY = {"export", "torch", "sklearn", "scipy", "onnx"}


def test_the_tree_has_no_import_circle() -> None:
    graph = import_graph()
    assert "runtime.results" in graph and "export.bundle.build" in graph  # the graph sees the tree
    assert cycles(graph) == []


def test_cycles_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_runtime_never_imports_the_offline_stage() -> None:
    offenders = {name: sorted(top for top in {n.split(".")[0] for n in imported_names(path, name)} if top in HEAVY)
                 for name, path in project_files().items() if name.startswith("runtime")}
    assert {name: tops for name, tops in offenders.items() if tops} == {}


def _fresh(code: str) -> None:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_results_and_retriever_import_alone_in_either_order() -> None:
    _fresh("import sys, runtime.results as r; assert 'runtime.retriever' not in sys.modules; r.Match, r.Answer")
    _fresh("import runtime.retriever as q, runtime.results as r; assert q.Match is r.Match and q.Answer is r.Answer")
