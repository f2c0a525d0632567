"""`shadematch engine build`: one ONNX model -> one TensorRT plan and its sidecar manifest.

The same calls serve both TensorRT flavours (runtime.engines.library); where they differ the code asks the
module what it offers. Plans and manifests are written to temporary names and renamed into place, so a
failed build never leaves a plan without its manifest or replaces a good one.
"""
from __future__ import annotations

import json
import logging
import os
import tempfile
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from runtime.bundle import sha256_file
from runtime.engines.device import cuda_device
from runtime.engines.library import TensorRTLibrary, import_tensorrt
from runtime.engines.plans import PlanManifest, sidecar_for
from runtime.errors import EngineError
from runtime.describe.modelcard import INT8, ModelCard, card_path_for

from ..bundle.build import load_checked_card
from .precision import calibration_images, int8_card, quantize_qdq, to_fp16
from .profiles import ShapeProfile, profile_for

LOG = logging.getLogger("shadematch")
PRECISIONS = ("fp32", "fp16", "int8")
DEMO_CATALOG = Path(__file__).resolve().parents[1] / "demo" / "catalog.csv"
#: TensorRT for RTX's own default targets (8.0, 8.6, 8.9, 12.0 and later), written out so the manifest is
#: exact; Turing (7.5) needs a plan of its own (NVIDIA: a portable engine including Turing is slower).
DEFAULT_RTX_TARGETS = ("8.0", "8.6", "8.9", "12.0", "12.1")
TIMING_CACHE = "timing.cache"


@dataclass(frozen=True)
class EngineBuildOptions:
    flavor: str | None = None  # "rtx" | "tensorrt" | None: the first installed
    precision: str = "fp32"
    max_batch: int = 16
    compute_capabilities: tuple[str, ...] = ()  # RTX: default DEFAULT_RTX_TARGETS; full TensorRT: this GPU
    calibration_catalog: Path = DEMO_CATALOG
    calibration_count: int = 32
    calibration_method: str = "percentile"
    timing_cache: Path | None = None  # default: OUT/timing.cache (full TensorRT)


@dataclass(frozen=True)
class EngineBuildReport:
    plan: Path
    manifest: PlanManifest
    seconds: float


class _Logger:
    """TensorRT's log into the `shadematch` logger; errors are also kept for the exception message."""

    def __init__(self, library: TensorRTLibrary) -> None:
        trt = library.module
        outer = self

        class Bridge(trt.ILogger):
            def __init__(self) -> None:
                trt.ILogger.__init__(self)

            def log(self, severity: Any, msg: str) -> None:
                outer.record(severity, msg)

        self._trt = trt
        self.errors: list[str] = []
        self.logger = Bridge()

    def record(self, severity: Any, msg: str) -> None:
        severities = self._trt.ILogger.Severity
        if severity in (severities.INTERNAL_ERROR, severities.ERROR):
            self.errors.append(msg)
            LOG.error("TensorRT: %s", msg)
        elif severity == severities.WARNING:
            LOG.warning("TensorRT: %s", msg)
        else:
            LOG.debug("TensorRT: %s", msg)


#: Tasks whose models get TensorRT plans: the visual model and MANet's EAST text branch.
PLANNED_TASKS = ("visual", "text")


def build_engine(onnx_path: Path, out_dir: Path, options: EngineBuildOptions = EngineBuildOptions()) -> EngineBuildReport:
    """Build ``onnx_path`` (with its card) into ``out_dir``; returns the plan, its manifest and the time."""
    started = time.perf_counter()
    if options.precision not in PRECISIONS:
        raise EngineError(f"unknown precision {options.precision!r} (known: {', '.join(PRECISIONS)})")
    onnx_path = Path(onnx_path)
    card = load_checked_card(onnx_path)
    if card.precision == INT8:
        raise EngineError(f"{card.name} is already INT8, in ONNX Runtime's CPU form: build plans from its float32 parent "
                          f"{card.raw.get('quantized_from', {}).get('file')} (--precision int8 makes TensorRT's own Q/DQ form)")
    if card.task not in PLANNED_TASKS:
        raise EngineError(f"{card.name} is a {card.task} model: the label reader runs on ONNX Runtime, TensorRT plans "
                          f"are built for {' and '.join(PLANNED_TASKS)} models")
    library = import_tensorrt(options.flavor)
    targets = _targets(library, options.compute_capabilities)
    profile = profile_for(card, options.max_batch)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{card.name}.{library.flavor}.{options.precision}.{'-'.join('sm' + t.replace('.', '') for t in targets)}"
    plan_path = out_dir / f"{stem}.plan"  # a rebuild replaces it, atomically, with its manifest
    with tempfile.TemporaryDirectory(prefix=".engine-", dir=out_dir) as tmp:
        source, use_flags = _precision_source(onnx_path, card, library, options, out_dir, Path(tmp))
        plan, network_io, timing = _build(library, source, profile, targets, options, use_flags, out_dir)
        staged = Path(tmp) / plan_path.name
        staged.write_bytes(plan)
        manifest = PlanManifest(
            plan=plan_path.name, plan_sha256=sha256_file(staged), plan_bytes=staged.stat().st_size,
            model_name=card.name, task=card.task, onnx_sha256=card.sha256,
            flavor=library.flavor, library_module=library.name, library_version=library.version,
            compute_capabilities=targets, precision=options.precision, strongly_typed=library.strongly_typed,
            max_batch=options.max_batch, inputs={profile.name: {**network_io.pop(profile.name), **profile.to_dict()}},
            outputs=network_io, built_onnx_sha256=sha256_file(source), timing_cache=timing,
            created=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        )
        staged_manifest = Path(tmp) / sidecar_for(plan_path).name
        manifest.save(staged_manifest)
        os.replace(staged, plan_path)
        os.replace(staged_manifest, sidecar_for(plan_path))
    return EngineBuildReport(plan_path, manifest, time.perf_counter() - started)


def _targets(library: TensorRTLibrary, wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The compute capabilities the plan will run on."""
    if library.targets_compute_capabilities:
        known = library.known_compute_capabilities()
        chosen = wanted or tuple(t for t in DEFAULT_RTX_TARGETS if t in known)
        for capability in chosen:
            library.compute_capability_enum(capability)  # a clear error for one the library cannot target
        return tuple(sorted(set(chosen), key=lambda c: tuple(int(p) for p in c.split("."))))
    # Full TensorRT builds for the GPU it runs on (no hardware-compatibility mode here).
    device = cuda_device(library)
    if wanted and set(wanted) != {device.compute_capability}:
        raise EngineError(
            f"{library.name} builds for the GPU it runs on ({device.name}, {device.compute_capability}); "
            f"asked for {', '.join(wanted)}: build on such a GPU, or use --flavor rtx for RTX targets"
        )
    return (device.compute_capability,)


def _precision_source(
    onnx_path: Path, card: ModelCard, library: TensorRTLibrary, options: EngineBuildOptions, out_dir: Path, tmp: Path
) -> tuple[Path, bool]:
    """The ONNX to parse, and whether precision must come from builder flags (weakly typed TensorRT 8)."""
    if options.precision == "fp32":
        return onnx_path, False
    if options.precision == "fp16":
        if library.strongly_typed:
            return to_fp16(onnx_path, tmp / f"{card.name}.fp16.onnx"), False
        return onnx_path, True
    qdq = write_qdq_model(onnx_path, card, out_dir, options)
    return qdq, not library.strongly_typed


def write_qdq_model(onnx_path: Path, card: ModelCard, out_dir: Path, options: EngineBuildOptions) -> Path:
    """The INT8 Q/DQ ONNX beside the plans, with a card of its own so ONNX Runtime can run it too (that is
    how its accuracy cost is measured on a CPU: `shadematch build --model` it and `shadematch eval`)."""
    images = calibration_images(options.calibration_catalog, options.calibration_count)
    qdq = out_dir / f"{card.name}-int8-qdq.onnx"
    quantize_qdq(onnx_path, qdq, card, images, options.calibration_method)
    raw = int8_card(card, qdq.stem, sha256_file(qdq), {
        "catalogue": str(options.calibration_catalog), "images": len(images), "method": options.calibration_method,
        "form": "TensorRT Q/DQ: int8 symmetric per-tensor activations, int8 symmetric per-channel weights"})
    card_path = card_path_for(qdq)
    staged = card_path.with_name(f".{card_path.name}.tmp")
    staged.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    os.replace(staged, card_path)
    return qdq


def _build(
    library: TensorRTLibrary, source: Path, profile: ShapeProfile, targets: tuple[str, ...],
    options: EngineBuildOptions, use_flags: bool, out_dir: Path,
) -> tuple[bytes, dict[str, dict[str, Any]], str]:
    trt = library.module
    log = _Logger(library)
    builder = trt.Builder(log.logger)
    creation = trt.NetworkDefinitionCreationFlag
    flags = 0
    if library.strongly_typed:
        flags |= 1 << int(creation.STRONGLY_TYPED)
    elif hasattr(creation, "EXPLICIT_BATCH"):  # TensorRT 8: explicit batch must be asked for
        flags |= 1 << int(creation.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, log.logger)
    if not parser.parse_from_file(str(source)):
        problems = [_parser_error(parser.get_error(i)) for i in range(parser.num_errors)]
        raise EngineError(f"{library.name} cannot parse {source.name}: " + "; ".join(problems or log.errors or ["no detail"]))
    io = _network_io(library, network)
    if profile.name not in io:
        raise EngineError(f"{source.name} has no input {profile.name!r} (inputs: {', '.join(_inputs(network))})")
    config = builder.create_builder_config()
    shape_profile = builder.create_optimization_profile()
    shape_profile.set_shape(profile.name, profile.min, profile.opt, profile.max)
    config.add_optimization_profile(shape_profile)
    if use_flags:
        config.set_flag(trt.BuilderFlag.FP16 if options.precision == "fp16" else trt.BuilderFlag.INT8)
    if library.targets_compute_capabilities:
        config.num_compute_capabilities = len(targets)
        for index, capability in enumerate(targets):
            config.set_compute_capability(library.compute_capability_enum(capability), index)
    cache_path = options.timing_cache or out_dir / TIMING_CACHE
    timing = _use_timing_cache(library, config, cache_path)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise EngineError(f"{library.name} could not build {source.name}: " + "; ".join(log.errors or ["no detail"]))
    if timing != "unused":
        _save_timing_cache(config.get_timing_cache(), cache_path)
    return bytes(memoryview(plan)), io, timing


def _use_timing_cache(library: TensorRTLibrary, config: Any, path: Path) -> str:
    """Load the timing cache of earlier builds (tactic timings carry over between builds on one GPU)."""
    if library.compiles_at_runtime:
        return "unused"  # TensorRT for RTX times and compiles kernels on the device (its runtime cache)
    blob = path.read_bytes() if path.is_file() else b""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        config.set_timing_cache(config.create_timing_cache(blob), False)
    return "reused" if blob else "created"


def _save_timing_cache(cache: Any, path: Path) -> None:
    staged = path.with_name(f".{path.name}.tmp")
    staged.write_bytes(bytes(memoryview(cache.serialize())))
    os.replace(staged, path)


def _parser_error(error: Any) -> str:
    """One ONNX parser error with the node it is about (name and operator where the library gives them)."""
    where = f"node {error.node()}"
    if hasattr(error, "node_name") and error.node_name():
        where += f" {error.node_name()!r}"
    if hasattr(error, "node_operator") and error.node_operator():
        where += f" ({error.node_operator()})"
    return f"{where}: {error.desc()}"


def _inputs(network: Any) -> list[str]:
    return [network.get_input(i).name for i in range(network.num_inputs)]


def _network_io(library: TensorRTLibrary, network: Any) -> dict[str, dict[str, Any]]:
    """Names, numpy dtypes and shapes (-1: dynamic) of the network's inputs and outputs."""
    tensors = [network.get_input(i) for i in range(network.num_inputs)]
    tensors += [network.get_output(i) for i in range(network.num_outputs)]
    return {
        t.name: {"dtype": np.dtype(library.module.nptype(t.dtype)).name, "shape": [int(d) for d in t.shape]}
        for t in tensors
    }
