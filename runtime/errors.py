"""Error types: each names the thing that is wrong so a kiosk operator or a CLI user can act on it."""


class ShadematchError(Exception):
    """Base of every error shadematch raises on purpose; the CLI prints its message as a one-line reason."""


class ImageError(ShadematchError):
    """An image could not be used: unreadable, empty, truncated, too large or of an unsupported format."""


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
