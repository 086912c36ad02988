"""Errors that name what is wrong: the file, the record (line) and the field."""
from __future__ import annotations


class RecordError(ValueError):
    """A bad input record. `where` is "FILE:LINE" (or any locator), `field` the offending field."""

    def __init__(self, where: str, field: str, message: str):
        self.where, self.field, self.message = where, field, message
        parts = [p for p in (where, f"field '{field}'" if field else "") if p]
        super().__init__(f"{': '.join(parts)}: {message}" if parts else message)
