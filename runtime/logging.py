"""Structured logging for every internflow process: console in development, JSON when configured."""

from __future__ import annotations

import logging
import sys

import structlog

from runtime.settings import Settings


def configure_logging(settings: Settings) -> None:
    """Configure structlog once, at the edge of the program. Log lines carry ids, never names or
    e-mail addresses: callers bind `internship_id` and `workflow_id`, not personal data."""
    level = getattr(logging, settings.log_level.upper())
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if settings.log_format == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
    logging.basicConfig(level=max(level, logging.WARNING), stream=sys.stderr)
