"""Reading a multipart/form-data upload: the document in one part, small fields beside it.

Parsed here with python-multipart's streaming parser rather than by Starlette's form reader,
because that reader drops the extended `filename*` parameter (RFC 7578 4.2 forbids it, yet older
HTTP client libraries send a non-ASCII name only that way) and then takes the document for a text
field. A part's file name is decoded in every form clients send it:

- `filename="季度报告.pdf"`: raw UTF-8, as browsers send it (HTML's form submission algorithm);
- `filename*=utf-8''%E5%AD%A3...` (RFC 5987 / RFC 2231, continuations included), which wins over a
  plain `filename` beside it (RFC 6266 4.3);
- `filename="=?utf-8?B?...?="`: RFC 2047 encoded words, as some mail-derived clients send it.

The name is for display only (never a key or a path: DESIGN.md); `api.submission.safe_display_name`
cleans it further.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email.header import decode_header, make_header
from email.message import Message
from email.utils import collapse_rfc2231_value

from fastapi import Request
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from tessera.errors import InvalidInput, PayloadTooLarge, UnsupportedMediaType

MAX_FIELD_BYTES = 1024 * 1024  # a field beside the document (options JSON, a webhook URL)
_ENCODED_WORD = re.compile(r"=\?[\w.:-]+\?[bBqQ]\?[^?]*\?=")


@dataclass
class MultipartUpload:
    """The document's bytes and file name, and the other fields as text."""

    data: bytes
    filename: str | None
    fields: dict[str, str] = field(default_factory=dict)


async def read_multipart(request: Request, max_file_bytes: int, file_field: str = "file",
                         max_fields: int = 8) -> MultipartUpload:
    """The upload in `request`. Raises UnsupportedMediaType (not multipart), PayloadTooLarge (the
    document over `max_file_bytes`, a field over MAX_FIELD_BYTES; a declared length over the
    limit never gets here: api/body_limit.py), InvalidInput (unparseable, too many parts, no
    `file_field` part; HTTP 400 or 422)."""
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    if content_type != b"multipart/form-data":
        raise UnsupportedMediaType(f"send multipart/form-data with the document in the field '{file_field}'")
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInput("the multipart body has no boundary", code="bad_request", http_status=400)
    collector = _Collector(file_field, max_file_bytes, max_fields)
    parser = MultipartParser(boundary, collector.callbacks())
    try:
        async for chunk in request.stream():
            parser.write(chunk)
        parser.finalize()
    except MultipartParseError as exc:
        raise InvalidInput(f"the multipart body cannot be parsed: {exc}"[:300], code="bad_request",
                           http_status=400) from exc
    return collector.upload()


class _Collector:
    """python-multipart callbacks that keep each part's name, file name and bytes, within limits."""

    def __init__(self, file_field: str, max_file_bytes: int, max_fields: int):
        self.file_field, self.max_file_bytes, self.max_fields = file_field, max_file_bytes, max_fields
        self.parts: list[tuple[str, str | None, bytearray]] = []
        self._header_name, self._header_value = b"", b""
        self._disposition = b""

    def callbacks(self) -> dict:
        return {"on_part_begin": self._begin, "on_header_field": self._header_field,
                "on_header_value": self._header_val, "on_header_end": self._header_end,
                "on_headers_finished": self._headers_done, "on_part_data": self._data}

    def _begin(self) -> None:
        self._disposition = b""
        if len(self.parts) >= self.max_fields:
            raise InvalidInput(f"the form has more than {self.max_fields} parts")

    def _header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def _header_val(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def _header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name, self._header_value = b"", b""

    def _headers_done(self) -> None:
        name, filename = disposition_names(self._disposition)
        if name is None:
            raise InvalidInput("a form part has no name in its Content-Disposition", code="bad_request",
                               http_status=400)
        self.parts.append((name, filename, bytearray()))

    def _data(self, data: bytes, start: int, end: int) -> None:
        name, _, buffer = self.parts[-1]
        buffer += data[start:end]
        limit = self.max_file_bytes if name == self.file_field else MAX_FIELD_BYTES
        if len(buffer) > limit:
            what = "the file" if name == self.file_field else f"the form field {name!r}"
            raise PayloadTooLarge(f"{what} is larger than the {limit // (1024 * 1024)} MiB limit")

    def upload(self) -> MultipartUpload:
        documents = [part for part in self.parts if part[0] == self.file_field]
        if len(documents) != 1:
            raise InvalidInput(f"send exactly one document in the multipart field '{self.file_field}'")
        _, filename, data = documents[0]
        fields = {name: bytes(value).decode("utf-8", errors="replace")
                  for name, _, value in self.parts if name != self.file_field}
        return MultipartUpload(bytes(data), filename, fields)


def disposition_names(header: bytes) -> tuple[str | None, str | None]:
    """(field name, file name) from a part's Content-Disposition, the file name decoded from any
    of the forms in this module's docstring; None where absent."""
    message = Message()
    message["content-disposition"] = _text(header)
    params = message.get_params(header="content-disposition") or []
    name = filename = extended = None
    for key, value in params[1:]:
        key = key.lower()
        if key == "name" and name is None:
            name = collapse_rfc2231_value(value)
        elif key == "filename" and isinstance(value, tuple):
            extended = collapse_rfc2231_value(value)
        elif key == "filename" and filename is None:
            filename = value
    filename = extended if extended is not None else filename
    if filename and _ENCODED_WORD.search(filename):
        filename = _decode_encoded_words(filename)
    return name, filename


def _text(header: bytes) -> str:
    """Header bytes as text: UTF-8 as browsers send it, else Latin-1 (RFC 7230's octets)."""
    try:
        return header.decode("utf-8")
    except UnicodeDecodeError:
        return header.decode("latin-1")


def _decode_encoded_words(value: str) -> str:
    try:
        return str(make_header(decode_header(value)))
    except (LookupError, ValueError, UnicodeDecodeError):
        return value  # an unknown charset or broken word: keep what was sent
