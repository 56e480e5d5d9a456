"""The pure rules behind the run list and the group and histogram lists: what each entry says, and
which one is chosen when the URL names none (or one the run does not have).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence

from pipeline.detectors.base import Group, Stack

NO_RUNS_MESSAGE = "No runs yet — waiting for the receivers…"


def choose_histogram(names: Sequence[str], current: str | None, remembered: str | None = None) -> str | None:
    """Keep the current choice; else the one last chosen here; else the first (also for groups)."""
    for candidate in (current, remembered):
        if candidate is not None and candidate in names:
            return candidate
    return names[0] if names else None


choose_group = choose_histogram


def group_options(groups: Sequence[tuple[Group, Sequence[str]]]) -> list[dict]:
    """The plug-in's groups, in its priority order (empty groups are already left out by the view)."""
    return [{"label": group.title, "value": group.title} for group, _ in groups]


GRID_ENTRY_PREFIX = "<grid>"  # histogram names never start like this (cf. the service's "<view>")


def grid_entry(group_title: str) -> str:
    """The histogram-list value that shows a whole grid group at once."""
    return GRID_ENTRY_PREFIX + group_title


def grid_group_of(value: str | None) -> str | None:
    """The group title of a grid entry, None for a histogram name."""
    if value is None or not value.startswith(GRID_ENTRY_PREFIX):
        return None
    return value[len(GRID_ENTRY_PREFIX) :]


def histogram_entries(
    names: Sequence[str],
    stacks: Sequence[Stack],
    pretty_name: Callable[[str], str],
    grid_group: str | None = None,
) -> list[dict]:
    """Options for the histograms of one group, labelled with their pretty names.

    A stack is listed once, under its name and title; its other members are not listed on their
    own (the plug-in contract), unless the stack itself lives in another group. A grid group
    (`grid_group`: its title) with several histograms first offers all of them as one grid, which is
    how the original showed per-supermodule groups.
    """
    grid = []
    if grid_group is not None and len(names) > 1:
        grid = [{"label": f"All {len(names)} as a grid", "value": grid_entry(grid_group)}]
    present = set(names)
    stack_by_name = {stack.name: stack for stack in stacks if stack.name in present}
    drawn_in_stack = {
        member for stack in stack_by_name.values() for member in stack.members if member != stack.name
    }
    options = []
    for name in names:
        if name in drawn_in_stack:
            continue
        stack = stack_by_name.get(name)
        options.append({"label": stack.title if stack else pretty_name(name), "value": name})
    return grid + options


def options_equal(new: Sequence[Mapping], old: Sequence[Mapping] | None) -> bool:
    """Compare option lists as the browser sends them back (plain JSON values)."""
    old = old or []
    return len(new) == len(old) and all(
        a.get("label") == b.get("label") and a.get("value") == b.get("value")
        for a, b in zip(new, old, strict=True)
    )


_DIRECTORY = re.compile(r"^.*/")
_PREFIXES = re.compile(r"^(h_|fHist|hist)")
_VERSUS = re.compile(r"(?<=[A-Za-z0-9])vs(?=[A-Z])")
_SUPERMODULE = re.compile(r"_SM(\d+)$")


def readable_name(name: str, pretty_name: Callable[[str], str] | None = None) -> str:
    """The plug-in's pretty name, or a readable fallback when it has none (it returns the raw name):
    no folder, no `h_`/`fHist` prefix, underscores as spaces, `_SM18` as "· SM 18"."""
    pretty = pretty_name(name) if pretty_name is not None else name
    if pretty != name and "_" not in pretty:
        return pretty
    text = _DIRECTORY.sub("", pretty)
    supermodule = _SUPERMODULE.search(text)
    text = _SUPERMODULE.sub("", text)
    text = _PREFIXES.sub("", text) or text
    text = _VERSUS.sub(" vs ", text).replace("_", " ")
    text = re.sub(r"\s+", " ", text).strip()
    return f"{text} · SM {supermodule.group(1)}" if supermodule else text
