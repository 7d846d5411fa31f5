"""Errors with stable public codes.

Every failure a client can see carries a machine code that never changes and a
message meant for a person. `retryable` tells workers whether trying again can
help (a database blip) or not (a corrupt PDF). The API maps these to HTTP in
one place (api/errors.py).
"""

from __future__ import annotations


class TesseraError(Exception):
    code: str = "internal_error"
    http_status: int = 500
    retryable: bool = False

    def __init__(self, message: str, *, code: str | None = None, http_status: int | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if http_status is not None:
            self.http_status = http_status


class InvalidInput(TesseraError):
    """The client's document or request is wrong; retrying cannot help."""

    code = "invalid_request"
    http_status = 422


class UnsupportedMediaType(InvalidInput):
    code = "unsupported_media_type"
    http_status = 415


class EmptyDocument(InvalidInput):
    code = "empty_document"
    http_status = 422


class CorruptDocument(InvalidInput):
    code = "corrupt_document"
    http_status = 422


class EncryptedPdf(InvalidInput):
    code = "encrypted_pdf"
    http_status = 422


class TooManyPages(InvalidInput):
    code = "too_many_pages"
    http_status = 422


class ImageTooLarge(InvalidInput):
    code = "image_too_large"
    http_status = 422


class PayloadTooLarge(InvalidInput):
    code = "payload_too_large"
    http_status = 413


class InvalidOptions(InvalidInput):
    code = "invalid_options"
    http_status = 422


class ArchiveTooLarge(PayloadTooLarge):
    code = "archive_too_large"


class EntryTooLarge(PayloadTooLarge):
    """One document inside an archive (or fetched from a source) is over the size limit."""

    code = "entry_too_large"


class TooManyEntries(InvalidInput):
    code = "too_many_entries"


class EmptyBatch(InvalidInput):
    code = "empty_batch"


class UnsupportedArchive(UnsupportedMediaType):
    code = "unsupported_media_type"


class CorruptArchive(InvalidInput):
    code = "corrupt_archive"


class UnsafeArchiveEntry(InvalidInput):
    """A path that climbs out of the archive (`../`, absolute), a link or a device file."""

    code = "unsafe_archive_entry"


class NestedArchiveTooDeep(InvalidInput):
    code = "nested_archive_too_deep"


class SourceNotAllowed(InvalidInput):
    """A URL or S3 source Tessera refuses to read (scheme, private address, unlisted bucket)."""

    code = "source_not_allowed"


class SourceUnavailable(InvalidInput):
    """A source could not be read: unreachable, timed out, or answered with an error."""

    code = "source_unavailable"


class SourceNotFound(InvalidInput):
    code = "source_not_found"


class RateLimited(TesseraError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after_s: int):
        super().__init__(message)
        self.retry_after_s = retry_after_s


class NotFound(TesseraError):
    code = "not_found"
    http_status = 404


class Unauthorized(TesseraError):
    code = "unauthorized"
    http_status = 401


class ResultPurged(TesseraError):
    """The job's files and results were removed by retention (TESSERA_RETENTION_DAYS)."""

    code = "result_purged"
    http_status = 410


class Conflict(TesseraError):
    code = "conflict"
    http_status = 409


class TransientError(TesseraError):
    """A dependency is briefly unavailable (database, blob store, broker)."""

    code = "service_unavailable"
    http_status = 503
    retryable = True


def _transient_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean 'a dependency is down, try again later'."""
    from botocore.exceptions import BotoCoreError, ClientError
    from sqlalchemy.exc import OperationalError

    return (TransientError, OperationalError, BotoCoreError, ClientError, ConnectionError, TimeoutError)


TRANSIENT_ERRORS = _transient_errors()
