"""The pure rules behind the run list and the group and histogram lists: what each entry says, and
which one is chosen when the URL names none (or one the run does not have).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from pipeline.detectors.base import Group, Stack
from pipeline.detectors.names import unique_labels

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
    label: Callable[[str], str],
    grid_group: str | None = None,
) -> list[dict]:
    """Options for the histograms of one group, labelled with `label` (the plug-in's display names),
    never two alike (`pipeline.detectors.names.unique_labels`).

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
    listed = [name for name in names if name not in drawn_in_stack]
    labels = [stack_by_name[name].title if name in stack_by_name else label(name) for name in listed]
    unique = unique_labels(labels, listed)
    return grid + [{"label": text, "value": name} for text, name in zip(unique, listed, strict=True)]


def options_equal(new: Sequence[Mapping], old: Sequence[Mapping] | None) -> bool:
    """Compare option lists as the browser sends them back (plain JSON values)."""
    old = old or []
    return len(new) == len(old) and all(
        a.get("label") == b.get("label") and a.get("value") == b.get("value")
        for a, b in zip(new, old, strict=True)
    )
