"""The page registry: which module answers which path.

A page is one module in this package exposing

- `PATHS`: its path templates, e.g. `("/runs", "/")` or `("/run/<int:run>/<subsystem>",)`;
- `layout(context, params, query) -> Component`: the page for matched path parameters and the URL query
  (a dict of single values), built on the server when the page is opened;
- `register_callbacks(app, context)`: its callbacks, bound to `app` (never the global `dash.callback`,
  so that several apps in one process never collide);
- optionally `missing(context, params) -> str | None`: why the page does not exist for these parameters
  (a run with no data), None when it does. Such a path answers 404 like an unknown one, saying why.

Add a page by writing its module and listing it in `PAGE_MODULES`; `dashboard.components.shell` (`NAV_ITEMS`)
says which pages the navbar links to. Unknown paths, and paths whose page is `missing`, get the 404
page, with HTTP status 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from dashboard.pages import alarms, control_room, run, runs, system, trending

PAGE_MODULES: tuple[ModuleType, ...] = (runs, run, system, control_room, trending, alarms)

_PARAMETER = re.compile(r"<(?:(int|str):)?([A-Za-z_][A-Za-z0-9_]*)>")


@dataclass(frozen=True)
class Route:
    """One path template of one page, compiled."""

    template: str
    page: ModuleType
    pattern: re.Pattern
    converters: Mapping[str, Callable[[str], Any]]

    @classmethod
    def compile(cls, template: str, page: ModuleType) -> Route:
        converters: dict[str, Callable[[str], Any]] = {}
        regex, position = "", 0
        for match in _PARAMETER.finditer(template):
            regex += re.escape(template[position : match.start()])
            kind, name = match.group(1) or "str", match.group(2)
            regex += rf"(?P<{name}>-?\d+)" if kind == "int" else rf"(?P<{name}>[^/]+)"
            converters[name] = int if kind == "int" else str
            position = match.end()
        regex += re.escape(template[position:])
        return cls(template, page, re.compile(regex + "/?" if template != "/" else regex), converters)

    def match(self, path: str) -> dict[str, Any] | None:
        found = self.pattern.fullmatch(path)
        if found is None:
            return None
        return {name: convert(found.group(name)) for name, convert in self.converters.items()}


def routes(modules: tuple[ModuleType, ...] = PAGE_MODULES) -> list[Route]:
    return [Route.compile(template, module) for module in modules for template in module.PATHS]


def missing(page: ModuleType, context: Any, params: dict[str, Any]) -> str | None:
    """Why `page` does not exist for `params` (its `missing` hook), None when it does."""
    hook = getattr(page, "missing", None)
    return None if hook is None else hook(context, params)


def resolve(path: str | None, table: list[Route]) -> tuple[ModuleType, dict[str, Any]] | None:
    """The page and its parameters for `path`, None for an unknown path."""
    for route in table:
        params = route.match(path or "/")
        if params is not None:
            return route.page, params
    return None
