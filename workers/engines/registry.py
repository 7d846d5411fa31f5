"""Pick the engine named by `settings.engine`; heavy imports happen only for the one chosen."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workers.engines.base import Engine

if TYPE_CHECKING:
    from tessera.config import Settings


def create_engine(settings: Settings) -> Engine:
    """A new engine instance. Models load lazily, on the first `process` call
    (internvl: as its `from_settings` decides), so call this in the worker process."""
    if settings.engine == "rapidocr":
        from workers.engines.rapidocr_engine import RapidOcrEngine

        return RapidOcrEngine()
    if settings.engine == "digest":
        from workers.engines.digest import DigestEngine

        return DigestEngine(delay_s=settings.digest_delay_s, busy_s=settings.digest_busy_s,
                            poison=settings.digest_poison, nonce=settings.digest_nonce)
    if settings.engine == "internvl":
        from workers.internvl.engine import InternVLEngine

        return InternVLEngine.from_settings(settings)
    raise ValueError(f"unknown engine {settings.engine!r}; expected rapidocr, digest or internvl")
