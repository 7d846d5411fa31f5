"""Structured logs (structlog) to stderr, so command output on stdout stays clean."""

from __future__ import annotations

import logging
import os
import sys

import structlog


def configure_logging(level: str | None = None) -> None:
    level_no = getattr(logging, (level or os.environ.get("TESSERA_LOG_LEVEL", "INFO")).upper(), logging.INFO)
    json_logs = os.environ.get("TESSERA_LOG_JSON", "") not in ("", "0", "false")
    # Plain tracebacks: the rich default prints every local variable (slow, and it would copy
    # uploaded bytes into the log).
    renderer = (structlog.processors.JSONRenderer() if json_logs else
                structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback))
    structlog.configure(
        processors=[structlog.processors.add_log_level, structlog.processors.TimeStamper(fmt="iso"),
                    *([structlog.processors.format_exc_info] if json_logs else []), renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level_no),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
    )
