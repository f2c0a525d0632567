"""The photo of a kiosk query, read from its multipart/form-data body with Werkzeug's sans-IO multipart decoder.

Why not ``request.files``: Werkzeug's form parser turns every parsing problem into an empty form (its ``silent``
mode), so a photo whose part headers were not UTF-8 (a file name from an old phone or a Windows client) was
refused as "the form has no fields", and a body with too many parts was reported as an upload over the size
limit. Reading the parts here keeps Werkzeug's decoder and its bounds but says what actually went wrong, and
takes a file name in any encoding (it only names the photo in messages).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import BinaryIO

from werkzeug.datastructures import Headers
from werkzeug.sansio.multipart import NEED_DATA, Data, Epilogue, Field, File, MultipartDecoder

#: Bytes read from the request at a time.
_CHUNK = 64 * 1024


class UploadError(ValueError):
    """What is wrong with the upload: an HTTP status, a machine-readable code and a message for the shopper."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class UploadLimits:
    max_photo_bytes: int
    max_parts: int = 16
    max_field_bytes: int = 64 * 1024


class _LenientDecoder(MultipartDecoder):
    """Part headers decoded as UTF-8 where they are, byte for byte (latin-1) where they are not."""

    def _parse_headers(self, data: bytes | bytearray) -> Headers:
        try:
            return super()._parse_headers(data)
        except UnicodeDecodeError:
            return super()._parse_headers(bytes(data).decode("latin-1").encode("utf-8"))


def read_photo(stream: BinaryIO, boundary: bytes, field: str, limits: UploadLimits) -> tuple[str, bytes]:
    """The file name and bytes of the file part named ``field``; UploadError saying what is wrong otherwise."""
    decoder = _LenientDecoder(boundary)
    parts: list[str] = []
    photo: tuple[str, bytes] | None = None
    collecting: list[bytes] | None = None
    part_bytes = 0
    filename = ""
    finished = False
    while not finished:
        chunk = stream.read(_CHUNK)
        decoder.receive_data(chunk or None)
        while True:
            try:
                event = decoder.next_event()
            except ValueError as exc:
                raise UploadError(400, "malformed_multipart", f"the multipart body cannot be parsed ({exc})") from None
            if event is NEED_DATA:
                break
            if isinstance(event, (Field, File)):
                parts.append(event.name or "")
                if len(parts) > limits.max_parts:
                    raise UploadError(413, "too_many_parts", f"the form has more than {limits.max_parts} parts; "
                                                             f"send the photo alone in the field '{field}'")
                part_bytes = 0
                is_photo = isinstance(event, File) and event.name == field and photo is None
                collecting = [] if is_photo else None
                filename = event.filename if isinstance(event, File) else ""
            elif isinstance(event, Data):
                part_bytes += len(event.data)
                if collecting is not None:
                    if part_bytes > limits.max_photo_bytes:
                        raise UploadError(413, "upload_too_large", "the photo is larger than the "
                                                                   f"{limits.max_photo_bytes / 2**20:g} MB limit")
                    collecting.append(event.data)
                    if not event.more_data:
                        photo, collecting = (filename or "the photo", b"".join(collecting)), None
                elif part_bytes > limits.max_field_bytes:
                    raise UploadError(413, "field_too_large", f"a form field other than the photo is larger than "
                                                              f"{limits.max_field_bytes // 1024} KB")
            elif isinstance(event, Epilogue):
                finished = True
                break
        if not chunk and not finished:
            raise UploadError(400, "malformed_multipart", "the multipart body ends before its closing boundary")
    if photo is None:
        got = f" (got: {', '.join(sorted(set(parts)))})" if parts else " (the form has no fields)"
        raise UploadError(400, "missing_image_field", f"no photo in the field '{field}'{got}")
    return photo
