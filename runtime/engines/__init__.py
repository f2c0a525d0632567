"""TensorRT engine plans: the import shim for either TensorRT flavour, and the plan sidecar manifests with
the pure rules that decide whether a plan may run on a device (shared by `export` and the runtime backend)."""
from .library import FLAVORS, TensorRTLibrary, import_tensorrt
from .plans import DeviceInfo, NoPlanError, PlanManifest, check_plan, choose_plan, find_plans, select_plan

__all__ = [
    "FLAVORS", "TensorRTLibrary", "import_tensorrt",
    "DeviceInfo", "NoPlanError", "PlanManifest", "check_plan", "choose_plan", "find_plans", "select_plan",
]
