"""Structured logging for every internflow process: console in development, JSON when configured.

With INTERNFLOW_LOG_FORMAT=json every line a process writes is one JSON object: internflow's own
log lines, the standard library's (uvicorn's server and access loggers, the Temporal SDK,
asyncio, warnings), the Temporal core's (forwarded into Python logging) and an uncaught
exception."""

from __future__ import annotations

import logging
import sys
from types import TracebackType

import structlog
from temporalio.runtime import (
    LogForwardingConfig,
    LoggingConfig,
    Runtime,
    TelemetryConfig,
    TelemetryFilter,
)

from runtime.settings import Settings

#: uvicorn's loggers: no handlers of their own, they go through the root logger's formatter.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access")
#: Where the Temporal core's (Rust) log lines arrive in Python logging.
TEMPORAL_CORE_LOGGER = "temporalio.core"
_HANDLER_NAME = "internflow"


def _shared_processors() -> list[structlog.typing.Processor]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]


def _renderer(settings: Settings) -> structlog.typing.Processor:
    if settings.log_format == "json":
        return structlog.processors.JSONRenderer()
    return structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())


def configure_logging(settings: Settings) -> None:
    """Configure structlog and the standard library's logging once, at the edge of the program.
    Log lines carry ids, never names or e-mail addresses: callers bind `internship_id` and
    `workflow_id`, not personal data."""
    level = getattr(logging, settings.log_level.upper())
    renderer = _renderer(settings)
    structlog.configure(
        processors=[*_shared_processors(), structlog.processors.format_exc_info, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    # The standard library's records (uvicorn, the Temporal SDK, asyncio, ...) through the same
    # processors and renderer.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[
            *_shared_processors(),
            structlog.stdlib.add_logger_name,
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    # Ours replaces ours (configured again); handlers others put there (a test runner's) stay.
    for existing in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(max(level, logging.WARNING))  # libraries: warnings and errors only
    for name in UVICORN_LOGGERS:
        server_logger = logging.getLogger(name)
        server_logger.handlers = []
        server_logger.propagate = True
        server_logger.setLevel(level)
    logging.captureWarnings(True)
    if settings.log_format == "json":
        sys.excepthook = _log_uncaught
        _forward_temporal_core_logs()


def temporal_core_logging() -> LoggingConfig:
    """The Temporal core's log lines (warnings and errors) forwarded into Python logging, so
    they are rendered like every other line (a runtime built elsewhere, e.g. the worker's
    metrics runtime, passes this too)."""
    return LoggingConfig(
        filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
        forwarding=LogForwardingConfig(logger=logging.getLogger(TEMPORAL_CORE_LOGGER)),
    )


def _forward_temporal_core_logs() -> None:
    """Make the default Temporal runtime forward the core's log lines (before any client is
    made; a process that already made one keeps the runtime it has)."""
    try:
        Runtime.set_default(
            Runtime(telemetry=TelemetryConfig(logging=temporal_core_logging())),
            error_if_already_set=True,
        )
    except RuntimeError:
        pass


def _log_uncaught(
    kind: type[BaseException], error: BaseException, traceback: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, error, traceback)
        return
    structlog.get_logger("internflow").error(
        "uncaught_exception", exc_info=(kind, error, traceback)
    )
