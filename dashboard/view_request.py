"""From a run page's URL query to what it shows: the navigation lists, the window, the options, the view.

One place for these rules, used by the page's callbacks and by the download routes, so a downloaded
file holds exactly the histograms on screen (same slice, same options).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from dashboard.components.histogram_view import shown_names
from dashboard.layout import choose_group, choose_histogram, group_options, histogram_entries
from dashboard.url_state import ViewQuery
from pipeline.detectors import plugin_for
from pipeline.detectors.names import stored_titles
from pipeline.processing.options import OptionsError, ProcessingOptions
from pipeline.processing.service import ProcessedView, ProcessingService
from pipeline.processing.timeslice import MergerMode, Window


def navigation(
    service: ProcessingService, run: int, subsystem: str, query: ViewQuery
) -> tuple[list[dict], str | None, list[dict], str | None]:
    """(group options, group, histogram options, histogram) for a query: what it names when the run has
    it, else the first group and that group's first entry. The lists are the full run's.
    LookupError when the run has no data for the subsystem."""
    view = service.view(run, subsystem)
    groups = group_options(view.groups)
    group = choose_group([o["value"] for o in groups], query.group)
    spec, names = next(((g, n) for g, n in view.groups if g.title == group), (None, []))
    grid_title = spec.title if spec is not None and spec.grid else None
    labels = view_labels(service, view, subsystem, names)
    entries = histogram_entries(names, view.stacks, labels.__getitem__, grid_title)
    hist = choose_histogram([e["value"] for e in entries], query.hist)
    return groups, group, entries, hist


def view_labels(
    service: ProcessingService, view: ProcessedView, subsystem: str, names: list[str]
) -> dict[str, str]:
    """Plain-text display names of `names` in `view` (titles from its newest snapshot)."""
    titles = stored_titles(service.store, view.plan.used_snapshot_ids)
    return plugin_for(subsystem).labels(names, titles)


def window_of(service: ProcessingService, run: int, subsystem: str, query: ViewQuery) -> Window | None:
    """The query's slice (None: the full run; `min` alone: min..end of run), as the data API reads it
    (`pipeline.processing.query.ViewQuery.window`); OptionsError naming a bound the run does not have."""
    if not query.has_slice:
        return None
    return query.data_query().window(service.run_info(run, subsystem).length_minutes)


def mode_of(query: ViewQuery) -> MergerMode | None:
    """The merger mode asked for; None: as the run was recorded."""
    return query.data_query().mode


def with_valid_window(service: ProcessingService, run: int, subsystem: str, query: ViewQuery) -> ViewQuery:
    """`query`, or without its slice when the run does not have that window (a link made for a longer
    run, a min past the end), the error then named in its `not_applied`. LookupError: no data."""
    try:
        window_of(service, run, subsystem, query)
    except OptionsError as error:
        return replace(query.without_slice(), not_applied=(*query.not_applied, error))
    return query


def navigation_errors(query: ViewQuery, resolved: ResolvedView) -> list[OptionsError]:
    """A group or histogram the query names that the view does not have (another one is shown)."""
    errors = []
    if query.group is not None and query.group != resolved.group:
        errors.append(OptionsError("group", f"no group {query.group!r}; showing {resolved.group!r}"))
    elif query.hist is not None and query.hist != resolved.name:
        errors.append(OptionsError("hist", f"no histogram {query.hist!r} in {resolved.group!r}"))
    return errors


@dataclass(frozen=True)
class ResolvedView:
    view: ProcessedView
    window: Window | None
    options: ProcessingOptions
    group: str | None
    name: str | None  # the histogram-list value shown (a histogram, a stack, or a grid entry)


def resolve_view(service: ProcessingService, run: int, subsystem: str, query: ViewQuery) -> ResolvedView:
    """The view a query asks for. OptionsError (a bad value, naming its field), LookupError (no data)."""
    options = ProcessingOptions.from_mapping(query.option_values())
    window = window_of(service, run, subsystem, query)
    view = service.view(run, subsystem, window, options, mode_of(query))
    _, group, _, name = navigation(service, run, subsystem, query)
    return ResolvedView(view, window, options, group, name)


def slow_build(
    service: ProcessingService, run: int, subsystem: str, query: ViewQuery, min_snapshots: int
) -> dict | None:
    """What a background job must build before the page can show `query` quickly: a reset-mode window
    of at least `min_snapshots` snapshots whose shown histograms are not cached yet, as
    {"snapshots": count, "newest": newest snapshot id}. None when the page can build it at once.
    OptionsError and LookupError as `resolve_view`."""
    options = ProcessingOptions.from_mapping(query.option_values())
    window = window_of(service, run, subsystem, query)
    mode = mode_of(query)
    _, plan = service.plan(run, subsystem, window, mode)
    n_snapshots = len(plan.used_snapshot_ids)
    if plan.mode is not MergerMode.RESET or n_snapshots < min_snapshots:
        return None
    pending = {"snapshots": n_snapshots, "newest": plan.used_snapshot_ids[-1]}
    if not service.is_cached(run, subsystem, window, options, mode):
        return pending
    resolved = resolve_view(service, run, subsystem, query)
    if resolved.name is None:
        return None
    _, _, names = shown_names(resolved.view, subsystem, resolved.name)
    return None if all(resolved.view.is_processed(name) for name in names) else pending
