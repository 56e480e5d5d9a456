"""How ROOT strings (names, titles) become Python text: UTF-8, or Latin-1 when the bytes are not UTF-8.

ROOT stores TString bytes without an encoding; old files and macros wrote Latin-1 ("µ" as one 0xB5
byte). uproot decodes with `surrogateescape`, which keeps such bytes as lone surrogates that no UTF-8
writer (Parquet, JSON) accepts, so one title could make a whole snapshot unwritable. Both decoders go
through this module, so the fast and the generic path give the same text.
"""

from __future__ import annotations


def root_text(raw: bytes) -> str:
    """Text of a ROOT string's bytes: UTF-8 when they are valid UTF-8, else Latin-1 (never fails)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        # Every byte is a Latin-1 character, so this cannot fail; for old ROOT files it is also right.
        return raw.decode("latin-1")


def clean_text(text: str) -> str:
    """A str that uproot decoded with `surrogateescape`, as `root_text` would have decoded its bytes."""
    if text.isascii():
        return text  # the common case, and ASCII holds no surrogate
    return root_text(text.encode("utf-8", "surrogateescape"))
