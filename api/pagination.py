"""Opaque cursors for keyset pagination: base64url of a small JSON object.

Clients must treat a cursor as opaque; anything that does not decode to what
this module wrote is refused with 422 `invalid_cursor`, never a 500.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from datetime import datetime, timezone

from tessera.errors import InvalidInput

MAX_CURSOR_CHARS = 512
MAX_PAGE_NO = 2**31 - 1
_ID = re.compile(r"[0-9A-Za-z_-]{1,64}")


class InvalidCursor(InvalidInput):
    code = "invalid_cursor"
    http_status = 422


def encode(payload: dict[str, object]) -> str:
    raw = json.dumps(payload, separators=(",", ":"), sort_keys=True).encode("utf-8")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode(cursor: str) -> dict[str, object]:
    if not cursor or len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor("the cursor is not one this API returned")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        payload = json.loads(raw.decode("utf-8"))
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise InvalidCursor("the cursor is not one this API returned") from exc
    if not isinstance(payload, dict):
        raise InvalidCursor("the cursor is not one this API returned")
    return payload


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)


def job_cursor(created_at: datetime, job_id: str) -> str:
    return encode({"t": as_utc(created_at).isoformat(), "i": job_id})


def decode_job_cursor(cursor: str) -> tuple[datetime, str]:
    payload = decode(cursor)
    moment, job_id = payload.get("t"), payload.get("i")
    if not isinstance(moment, str) or not isinstance(job_id, str) or not _ID.fullmatch(job_id):
        raise InvalidCursor("the cursor is not a job listing cursor")
    try:
        return as_utc(datetime.fromisoformat(moment)), job_id
    except (ValueError, OverflowError) as exc:
        raise InvalidCursor("the cursor is not a job listing cursor") from exc


def page_cursor(page_no: int) -> str:
    return encode({"p": page_no})


def decode_page_cursor(cursor: str) -> int:
    page_no = decode(cursor).get("p")
    if type(page_no) is not int or not 0 <= page_no <= MAX_PAGE_NO:
        raise InvalidCursor("the cursor is not a page listing cursor")
    return page_no


def is_plausible_id(value: str) -> bool:
    """Ids are short url-safe strings; anything else cannot name a row (and never reaches SQL)."""
    return bool(_ID.fullmatch(value))
