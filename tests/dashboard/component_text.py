"""Every string a Dash component tree shows, for tests of pure page builders (no browser)."""

from __future__ import annotations

from typing import Any


def component_texts(component: Any) -> list[str]:
    """The strings in `component` and its children, depth first."""
    if isinstance(component, str):
        return [component]
    if isinstance(component, list | tuple):
        return [text for child in component for text in component_texts(child)]
    children = getattr(component, "children", None)
    return [] if children is None else component_texts(children)
