"""Plan sidecar manifests (`NAME.plan.json` beside `NAME.plan`) and the pure rules that pick a plan.

A TensorRT plan runs only on the library flavour and version that built it, only on the GPU generations it
was built for, and only means something for the very ONNX model it came from. These rules are plain
functions over manifests and a device description, so they are tested on a CPU with real plans' manifests;
the GPU backend only supplies the device.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

from ..checksums import sha256_file
from ..errors import BackendError, NoGpuStackError

FORMAT_NAME = "shadematch-plan"
FORMAT_VERSION = 1
SUFFIX = ".plan"
SIDECAR_SUFFIX = ".plan.json"


@dataclass(frozen=True)
class DeviceInfo:
    """The GPU a plan would run on, and the TensorRT library that would run it."""

    name: str
    compute_capability: str  # "8.6"
    flavor: str  # "rtx" | "tensorrt"
    library_version: str


@dataclass(frozen=True)
class PlanManifest:
    """What a plan is: see DEVELOPERS.md "Plan sidecar manifest" for every field."""

    plan: str
    plan_sha256: str
    plan_bytes: int
    model_name: str
    task: str
    onnx_sha256: str
    flavor: str
    library_module: str
    library_version: str
    compute_capabilities: tuple[str, ...]
    precision: str
    strongly_typed: bool
    max_batch: int
    inputs: dict[str, dict[str, Any]]
    outputs: dict[str, dict[str, Any]]
    built_onnx_sha256: str = ""
    timing_cache: str = ""
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        raw = asdict(self)
        raw["compute_capabilities"] = list(self.compute_capabilities)
        return {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, **raw}

    @classmethod
    def from_dict(cls, raw: Any, source: str = "plan manifest") -> "PlanManifest":
        if not isinstance(raw, dict) or raw.get("format") != FORMAT_NAME:
            raise BackendError(f"{source}: not a shadematch plan manifest")
        if raw.get("format_version") != FORMAT_VERSION:
            raise BackendError(
                f"{source}: plan manifest version {raw.get('format_version')}, this shadematch reads "
                f"{FORMAT_VERSION}; rebuild the engine with `shadematch engine build`"
            )
        names = set(cls.__dataclass_fields__)
        try:
            values = {key: raw[key] for key in names if key in raw}
            values["compute_capabilities"] = tuple(str(c) for c in raw["compute_capabilities"])
            return cls(**values)
        except (KeyError, TypeError) as exc:
            raise BackendError(f"{source}: malformed plan manifest ({exc})") from None

    @classmethod
    def load(cls, path: str | Path) -> "PlanManifest":
        path = Path(path)
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BackendError(f"plan manifest not found: {path}") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise BackendError(f"{path}: unreadable plan manifest ({exc})") from None
        return cls.from_dict(raw, source=str(path))

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n", encoding="utf-8")


def sidecar_for(plan: Path) -> Path:
    """NAME.plan has its manifest at NAME.plan.json."""
    return plan.with_name(plan.name + ".json")


def check_plan(manifest: PlanManifest, device: DeviceInfo, onnx_sha256: str | None = None) -> str | None:
    """Why ``manifest``'s plan cannot run on ``device`` (for the model ``onnx_sha256``), or None if it can."""
    if onnx_sha256 is not None and manifest.onnx_sha256 != onnx_sha256:
        return f"{manifest.plan} was built from another model (ONNX sha256 {manifest.onnx_sha256[:12]}…)"
    if manifest.flavor != device.flavor:
        return (f"{manifest.plan} was built with {manifest.library_module} (flavour {manifest.flavor}), "
                f"this machine runs {device.flavor}")
    # TensorRT plans are tied to the exact library build that made them (no version-compatible plans here).
    if manifest.library_version != device.library_version:
        return (f"{manifest.plan} was built with {manifest.library_module} {manifest.library_version}, "
                f"this machine has {device.library_version}")
    if device.compute_capability not in manifest.compute_capabilities:
        return (f"{manifest.plan} targets compute capability {', '.join(manifest.compute_capabilities)}, "
                f"the GPU {device.name} is {device.compute_capability}")
    return None


def select_plan(
    manifests: Iterable[PlanManifest], device: DeviceInfo, onnx_sha256: str | None = None
) -> tuple[PlanManifest | None, list[str]]:
    """The plan to run on ``device``, and why every other one was passed over.

    Among plans that fit, the one built for the fewest GPU generations wins (the most specialised build),
    then the given order (a bundle lists its plans in the order its author preferred).
    """
    fitting, reasons = [], []
    for order, manifest in enumerate(manifests):
        reason = check_plan(manifest, device, onnx_sha256)
        if reason is None:
            fitting.append((len(manifest.compute_capabilities), order, manifest))
        else:
            reasons.append(reason)
    if not fitting:
        return None, reasons
    return min(fitting, key=lambda entry: entry[:2])[2], reasons


class NoPlanError(BackendError):
    """There is no plan the model could run here at all: none was built, or this machine has no TensorRT or no
    GPU for the plans there are (as opposed to a plan that does not fit this GPU or library)."""


def plan_folders(model: Path) -> list[Path]:
    """Where the plans of NAME.onnx live: `build/` beside it (where `shadematch engine build` writes by
    default) and, for a bundle's models/visual.onnx, the bundle's `engines/`."""
    folders = [model.parent / "build", model.parent.parent / "engines"]
    return [folder for folder in dict.fromkeys(folders) if folder.is_dir()]


def find_plans(model: Path) -> list[Path]:
    """Plan manifests that may belong to ``model``: the sidecar of a .plan, or every sidecar in its plan
    folders (the caller matches them to the model by sha256)."""
    if model.suffix == SUFFIX:
        return [sidecar_for(model)]
    return [path for folder in plan_folders(model) for path in sorted(folder.glob("*" + SIDECAR_SUFFIX))]


def choose_plan(model: Path, device_for: Callable[[str], DeviceInfo]) -> tuple[Path, PlanManifest, DeviceInfo]:
    """The plan to run for ``model`` (an ONNX model, or a plan with its sidecar) on this machine.

    ``device_for(flavour)`` describes the GPU as that TensorRT flavour sees it, or raises BackendError (no
    library, no pycuda, no GPU); it is only called for flavours that some plan was built with. NoPlanError
    when there is no plan at all or this machine has no TensorRT or GPU for them (NoGpuStackError for every
    flavour), BackendError naming every reason when none fits.
    """

    sidecars = find_plans(model)
    if not sidecars:
        raise NoPlanError(f"no TensorRT plan for {model.name} (build one with `shadematch engine build`)")
    manifests, reasons = [], []
    for sidecar in sidecars:
        try:
            manifests.append((sidecar.parent, PlanManifest.load(sidecar)))
        except BackendError as exc:
            reasons.append(str(exc))
    onnx_sha256 = None if model.suffix == SUFFIX else sha256_file(model)
    flavors = list(dict.fromkeys(manifest.flavor for _, manifest in manifests))
    absent = []
    for flavor in flavors:
        try:
            device = device_for(flavor)
        except NoGpuStackError as exc:
            absent.append(f"{flavor} plans: {exc}")
            continue
        except BackendError as exc:
            reasons.append(f"{flavor} plans cannot run here: {exc}")
            continue
        candidates = [(folder, m) for folder, m in manifests if m.flavor == flavor]
        chosen, passed_over = select_plan([m for _, m in candidates], device, onnx_sha256)
        reasons.extend(passed_over)
        if chosen is not None:
            folder = next(folder for folder, m in candidates if m is chosen)
            return folder / chosen.plan, chosen, device
    if flavors and len(absent) == len(flavors) and not reasons:
        raise NoPlanError(f"no TensorRT plan for {model.name} can run on this machine: " + "; ".join(absent))
    raise BackendError(f"no TensorRT plan for {model.name} fits this machine: " + "; ".join(reasons + absent))
