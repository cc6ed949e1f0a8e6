"""A log handler that keeps every record with the trio time it was logged at."""

from __future__ import annotations

import logging

import trio


class Timed(logging.Handler):
    """Every log record with the trio time it was logged at (virtual under a MockClock)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[float, logging.LogRecord]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append((trio.current_time(), record))
