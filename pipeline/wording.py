"""How a count reads to people, everywhere a message or a page says one: "4,372 hot FastORs",
"1 request". Messages are stored with check results and alarms, so they must read right on their own."""

from __future__ import annotations


def counted(count: int, word: str, plural: str | None = None) -> str:
    """`count` with thousands separators and `word`, plural unless the count is one (`plural` when the
    plural is not word + "s")."""
    return f"{count:,} {word if count == 1 else plural or word + 's'}"
