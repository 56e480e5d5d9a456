"""The error every wire decoder raises for a payload that cannot become a complete histogram."""

from __future__ import annotations


class DecodeError(ValueError):
    """A payload that cannot be turned into a complete histogram (never stored)."""
