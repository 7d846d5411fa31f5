"""All configuration, in one validated object read from `TESSERA_*` variables.

Only entry points (the CLI, app start-up, worker start-up) call `get_settings()`;
libraries receive the object. Every setting has an embedded default, so a bare
`tessera serve` runs on SQLite, a local blob folder, kombu's filesystem queue
and the rapidocr engine.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

EngineName = Literal["rapidocr", "internvl", "digest"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="TESSERA_", extra="ignore")

    home: Path = Path(".tessera")
    database_url: str | None = None
    broker_url: str | None = None
    s3_endpoint_url: str | None = None
    s3_bucket: str | None = None
    s3_region: str = "us-east-1"

    engine: EngineName = "rapidocr"
    model_path: Path | None = None
    engine_batch_size: int = Field(4, ge=1, le=256)
    digest_delay_s: float = Field(0.0, ge=0)  # the test engine's simulated work per page

    # InternVL engine knobs (see workers/internvl/engine.py).
    internvl_max_new_tokens: int = Field(1024, ge=1, le=8192)
    internvl_system_message: str = "You are an AI assistant whose name is InternLM (书生·浦语)."
    internvl_vision_chunk_tiles: int = Field(128, ge=1)
    internvl_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    internvl_device: str = "auto"

    # Input limits: refuse before spending work.
    max_upload_bytes: int = 200 * 1024 * 1024
    max_pages: int = 2000
    max_page_pixels: int = 100_000_000  # rendered width x height, per page
    default_dpi: int = Field(200, ge=50, le=600)

    # Task behaviour.
    task_time_limit_s: int = 1800
    max_page_attempts: int = Field(3, ge=1)

    # Clients (tessera submit).
    server: str = "http://127.0.0.1:8000"
    api_key: str | None = None

    @model_validator(mode="after")
    def _check_modes(self) -> Settings:
        if self.engine == "internvl" and self.model_path is None:
            raise ValueError("TESSERA_ENGINE=internvl needs TESSERA_MODEL_PATH (a converted checkpoint)")
        if (self.s3_endpoint_url or self.s3_bucket) and not self.s3_bucket:
            raise ValueError("TESSERA_S3_ENDPOINT_URL is set but TESSERA_S3_BUCKET is not")
        return self

    @property
    def embedded(self) -> bool:
        """True when the queue is the embedded filesystem transport."""
        return self.broker_url is None

    @property
    def sqlalchemy_url(self) -> str:
        """The database URL with a driver chosen for the user (psycopg 3 / sqlite)."""
        if self.database_url is None:
            return f"sqlite:///{(self.home / 'tessera.db').resolve()}"
        url = self.database_url
        for prefix in ("postgresql://", "postgres://"):
            if url.startswith(prefix):
                return "postgresql+psycopg://" + url[len(prefix):]
        return url

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def queue_dir(self) -> Path:
        return self.home / "queue"


@lru_cache
def get_settings() -> Settings:
    return Settings()
