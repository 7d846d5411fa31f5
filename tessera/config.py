"""All configuration, in one validated object read from `TESSERA_*` variables.

Only entry points (the CLI, app start-up, worker start-up) call `get_settings()`;
libraries receive the object. Every setting has an embedded default, so a bare
`tessera serve` runs on SQLite, a local blob folder, kombu's filesystem queue
and the rapidocr engine.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

EngineName = Literal["rapidocr", "internvl", "digest"]
# Celery's worker_max_memory_per_child by engine when TESSERA_WORKER_MAX_MEMORY_MB is not set:
# about 3x the pool process's measured peak for the CPU engines (bench/worker_soak.py); off for
# InternVL, whose pool process holds the model (reloading it takes minutes).
ENGINE_MEMORY_MB = {"rapidocr": 3072, "digest": 3072, "internvl": 0}


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
    # The digest test engine (workers/engines/digest.py): simulated work per page, poison pages,
    # a nonce per run in the text (tells which attempt a stored result came from).
    digest_delay_s: float = Field(0.0, ge=0)
    digest_busy_s: float = Field(0.0, ge=0)
    digest_poison: bool = False
    digest_nonce: bool = False

    # InternVL engine knobs (see workers/internvl/engine.py).
    internvl_max_new_tokens: int = Field(1024, ge=1, le=8192)
    # The system message and the questions InternVL is asked; None: the built-in default
    # (workers/internvl/prompt.py says why each is worded so; README lists them).
    internvl_system_message: str | None = None
    internvl_ocr_prompt: str | None = None
    internvl_grounding_prompt: str | None = None  # must contain "{phrase}"
    # Region kinds asked for one at a time with the grounding prompt (comma-separated).
    internvl_grounding_phrases: Annotated[list[str] | None, NoDecode] = None
    internvl_table_prompt: str | None = None
    # Decode like the original chat(): drop the space before . , ? ! 's n't ... (off: the
    # text is exactly what the model wrote).
    internvl_chat_cleanup: bool = False
    internvl_vision_chunk_tiles: int = Field(128, ge=1)
    # Decode slots (default: ENGINE_BATCH_SIZE). Fewer slots than pages per call lets slots
    # freed by short answers take the call's remaining pages (continuous batching).
    internvl_decode_slots: int | None = Field(None, ge=1)
    # Cap on KV-cache positions per decode stream: slots x (longest prompt + max new tokens).
    # A 41-tile page's prompt is about 10,600 tokens; 0.19 MiB per position at full size.
    internvl_max_batch_tokens: int | None = Field(None, ge=1)
    internvl_dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    internvl_device: str = "auto"

    # Input limits: refuse before spending work.
    max_upload_bytes: int = 200 * 1024 * 1024
    max_pages: int = 2000
    max_page_pixels: int = 100_000_000  # rendered width x height, per page
    default_dpi: int = Field(200, ge=50, le=600)
    # Turn each page upright before recognition (workers/orientation.py, about 30 ms a page).
    detect_orientation: bool = True

    # Task behaviour and recovery (workers/leases.py, workers/recovery.py).
    task_time_limit_s: int = Field(1800, ge=5)
    visibility_timeout_s: int | None = Field(None, ge=1)  # default: task_time_limit_s + 600
    max_page_attempts: int = Field(3, ge=1)
    # A running page's lease; heartbeats renew it every lease_s / 3.
    lease_s: float = Field(30.0, gt=0)
    sweep_interval_s: float = Field(15.0, gt=0)
    stale_queued_s: float = Field(300.0, gt=0)  # queued work untouched this long is sent again
    # Retention (workers/retention.py): finished jobs' files and results are purged after this
    # many days (fractions allowed); None keeps everything.
    retention_days: float | None = Field(None, gt=0)
    # Celery replaces a pool process whose resident memory passed this after a task (a safety
    # net against leaks; bench/worker_soak.py measures the real growth). None: the engine's
    # default (ENGINE_MEMORY_MB); 0: off.
    worker_max_memory_mb: int | None = Field(None, ge=0)

    # Bulk submission: archives (api/archives.py) and fetched sources (api/sources.py).
    archive_max_entries: int = Field(1000, ge=1)  # documents per batch, nested archives included
    archive_max_total_bytes: int = Field(2 * 1024**3, ge=1)  # uncompressed, all entries together
    archive_max_entry_bytes: int = Field(200 * 1024 * 1024, ge=1)  # uncompressed, one entry
    archive_max_depth: int = Field(2, ge=1, le=5)  # 1: archives inside the upload are refused
    max_json_body_bytes: int = Field(1024 * 1024, ge=1024)
    allow_private_urls: bool = False  # fetch from loopback/private/link-local hosts (tests only)
    url_fetch_timeout_s: float = Field(30.0, gt=0)  # whole fetch of one URL source
    url_max_redirects: int = Field(5, ge=0, le=20)
    # Buckets URL-less `s3://` sources may be read from (comma-separated); every tenant can read them.
    s3_source_buckets: Annotated[list[str], NoDecode] = Field(default_factory=list)

    # Webhooks (workers/webhooks.py): at-least-once, signed, retried from the outbox.
    webhook_timeout_s: float = Field(10.0, gt=0)
    webhook_max_attempts: int = Field(12, ge=1)
    webhook_backoff_s: float = Field(10.0, gt=0)  # first retry delay; doubles per attempt
    webhook_backoff_max_s: float = Field(3600.0, gt=0)

    # Requests per tenant per minute on /v1, counted in Redis (off without Redis; 0 turns one off):
    # submissions and other writes, and reads (status polling is cheap, so off by default).
    rate_limit_per_minute: int = Field(600, ge=0)
    rate_limit_reads_per_minute: int = Field(0, ge=0)

    # Archive formats (workers/outputs/): the font that carries CJK text in the searchable PDF's
    # invisible layer (Debian's fonts-wqy-microhei; missing: a glyphless font carries it), and the
    # JPEG quality of its photographic pages.
    pdf_cjk_font: Path | None = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
    pdf_jpeg_quality: int = Field(85, ge=30, le=95)

    # Clients (tessera submit).
    server: str = "http://127.0.0.1:8000"
    api_key: str | None = None

    @field_validator("s3_source_buckets", "internvl_grounding_phrases", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("internvl_grounding_prompt")
    @classmethod
    def _has_phrase(cls, value: str | None) -> str | None:
        if value is not None and "{phrase}" not in value:
            raise ValueError("TESSERA_INTERNVL_GROUNDING_PROMPT must contain {phrase}")
        return value

    @field_validator("internvl_grounding_phrases")
    @classmethod
    def _some_phrase(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and not value:
            raise ValueError("TESSERA_INTERNVL_GROUNDING_PHRASES needs at least one phrase")
        return value

    @model_validator(mode="after")
    def _check_modes(self) -> Settings:
        if self.engine == "internvl" and self.model_path is None:
            raise ValueError(
                "TESSERA_ENGINE=internvl needs TESSERA_MODEL_PATH (a converted checkpoint)"
            )
        if (self.s3_endpoint_url or self.s3_bucket) and not self.s3_bucket:
            raise ValueError("TESSERA_S3_ENDPOINT_URL is set but TESSERA_S3_BUCKET is not")
        if self.s3_bucket and self.s3_bucket in self.s3_source_buckets:
            raise ValueError(
                "TESSERA_S3_SOURCE_BUCKETS must not list TESSERA_S3_BUCKET: "
                "every tenant could read every other tenant's documents"
            )
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
                return "postgresql+psycopg://" + url[len(prefix) :]
        return url

    @property
    def worker_memory_limit_mb(self) -> int:
        """Resident memory (MB) past which Celery replaces a pool process after its task; 0: never."""
        if self.worker_max_memory_mb is None:
            return ENGINE_MEMORY_MB[self.engine]
        return self.worker_max_memory_mb

    @property
    def blob_dir(self) -> Path:
        return self.home / "blobs"

    @property
    def queue_dir(self) -> Path:
        return self.home / "queue"


@lru_cache
def get_settings() -> Settings:
    return Settings()
