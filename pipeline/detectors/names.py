"""The one rule for what a histogram is called on a page, in a plot title, a control-room line or a
trend label: the plug-in's explicit name, else the ROOT title when it reads as a title, else the raw
name cleaned up. URLs, files and the API keep the raw name (the contract); only labels use this.

ROOT titles are TLatex (`p_{T}`, `#eta`): plot titles render them (`dashboard.figures`), plain-text
labels (menus, tiles) get `plain_text`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from typing import Protocol

_DIRECTORY = re.compile(r"^.*/")
# A task's prefix ("EMCTRQA_") and the ROOT naming habits after it.
_PREFIXES = re.compile(r"^([A-Z0-9]+_)?(h_|fHist|hist)")
_VERSUS = re.compile(r"(?<=[A-Za-z0-9])vs(?=[A-Z])")
_SUPERMODULE = re.compile(r"_SM(\d+)$")
# A title that is one identifier-like word ("FastORL0_SM3", "h_tpc_event_6") says no more than the name.
_IDENTIFIER = re.compile(r"[\w./:-]+")
_GREEK_OR_SYMBOL = re.compile(r"#([A-Za-z]+)")
_SCRIPT = re.compile(r"([_^])\{([^{}]*)\}")
_STYLE = re.compile(r"#(it|bf)\{([^{}]*)\}")
_SYMBOLS = {"pm": "±", "times": "×", "circ": "°", "infty": "∞", "sqrt": "√", "rightarrow": "→"}
_SUPERSCRIPT_DIGITS = str.maketrans("0123456789-+", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺")


def display_name(name: str, title: str = "", explicit: str | None = None) -> str:
    """What a person reads for histogram `name`: `explicit` (the plug-in's name for it) when given,
    else its ROOT `title` when that is a readable title, else `cleaned_name(name)`. TLatex kept."""
    if explicit:
        return explicit
    if is_readable_title(title, name):
        return title.strip()
    return cleaned_name(name)


def is_readable_title(title: str, name: str) -> bool:
    """A title worth showing: not empty, not the name (with or without its folder), not one
    identifier-like word."""
    title = title.strip()
    if not title or title in (name, name.rsplit("/", 1)[-1]):
        return False
    return _IDENTIFIER.fullmatch(title) is None


def cleaned_name(name: str) -> str:
    """A raw name made readable: no folder, no `h_`/`fHist`/`hist` prefix, "vs" spaced, underscores
    as spaces, `_SM18` as "· SM 18"."""
    text = _DIRECTORY.sub("", name)
    supermodule = _SUPERMODULE.search(text)
    text = _SUPERMODULE.sub("", text)
    text = _PREFIXES.sub("", text) or text
    text = _VERSUS.sub(" vs ", text).replace("_", " ")
    text = re.sub(r"\s+", " ", text).strip() or name
    return f"{text} · SM {supermodule.group(1)}" if supermodule else text


def plain_text(text: str) -> str:
    """TLatex as plain Unicode text for labels that cannot render markup: `#eta` -> η, `p_{T}` -> pT,
    `x_{vtx}` -> x_vtx, `c^{2}` -> c²."""
    converted = _STYLE.sub(lambda match: match.group(2), text)

    def symbol(match: re.Match) -> str:
        word = match.group(1)
        if word in _SYMBOLS:
            return _SYMBOLS[word]
        case = "CAPITAL" if word[0].isupper() else "SMALL"
        try:
            return unicodedata.lookup(f"GREEK {case} LETTER {word.upper()}")
        except KeyError:
            return match.group(0)

    converted = _GREEK_OR_SYMBOL.sub(symbol, converted)

    def script(match: re.Match) -> str:
        kind, content = match.groups()
        if kind == "^":
            return content.translate(_SUPERSCRIPT_DIGITS) if content.lstrip("-+").isdigit() else f"^{content}"
        return content if len(content) == 1 else f"_{content}"

    while _SCRIPT.search(converted):
        converted = _SCRIPT.sub(script, converted)
    return converted


def unique_labels(labels: Sequence[str], names: Sequence[str]) -> list[str]:
    """`labels` (one per name) with those shared by several names told apart by their raw name's last
    part: one list never shows two identical entries."""
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    return [
        f"{label} ({name.rsplit('/', 1)[-1]})" if counts[label] > 1 else label
        for label, name in zip(labels, names, strict=True)
    ]


class _TitleSource(Protocol):
    def histogram_titles(self, snapshot_id: str) -> dict[str, str]: ...


def stored_titles(store: _TitleSource, snapshot_ids: Sequence[str]) -> dict[str, str]:
    """The ROOT titles of the newest of `snapshot_ids` (a view's), by name; {} when there is none."""
    if not snapshot_ids:
        return {}
    try:
        return store.histogram_titles(snapshot_ids[-1])
    except KeyError:
        return {}
