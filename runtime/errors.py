"""Error types: each names the thing that is wrong so a kiosk operator or a CLI user can act on it."""


class ShadematchError(Exception):
    """Base of every error shadematch raises on purpose; the CLI prints its message as a one-line reason."""


class ImageError(ShadematchError):
    """An image could not be used: unreadable, empty, truncated, too large or of an unsupported format.

    Raised for one image of several (see `at_position`), it carries that image's ``position`` (0-based) in the
    call and ``detail``, the message without the position, so a caller can answer the others and say which failed."""

    position: int | None = None
    detail: str | None = None


def at_position(error: ImageError, position: int, count: int) -> ImageError:
    """``error`` naming its image's place among ``count``: the same kind, so callers still tell the cases apart (a
    kiosk answers 415 or 413), with ``position`` and ``detail`` set."""
    detail = error.detail or str(error)
    placed = type(error)(f"image {position + 1} of {count}: {detail}")
    placed.position, placed.detail = position, detail
    return placed


class UnsupportedImageError(ImageError):
    """The data is not an image, or an image format the runtime does not accept (a kiosk answers 415)."""


class ImageTooLargeError(ImageError):
    """The image has more pixels than the limit: refused from its header, before decoding (a kiosk answers 413)."""


class ModelCardError(ShadematchError):
    """A model card is missing a field or disagrees with its model."""


class BackendError(ShadematchError):
    """An inference backend is unavailable, failed to load a model, or was fed the wrong inputs."""


class NoGpuStackError(BackendError):
    """This machine has no TensorRT library or no CUDA GPU: a CPU machine, where ONNX Runtime is the normal choice."""


class EngineError(ShadematchError):
    """A TensorRT engine could not be built: the ONNX parser or the builder refused the model."""


class BundleError(ShadematchError):
    """A bundle is missing a file, has a wrong checksum, or comes from another format version."""


class CatalogError(ShadematchError):
    """A catalogue or queries table is malformed; the message names the line."""
