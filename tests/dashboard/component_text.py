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


def components_with_class(component: Any, class_name: str) -> list[Any]:
    """The components in `component` and its children whose className is `class_name`, depth first."""
    if isinstance(component, list | tuple):
        return [found for child in component for found in components_with_class(child, class_name)]
    if isinstance(component, str) or component is None:
        return []
    found = [component] if getattr(component, "className", None) == class_name else []
    return found + components_with_class(getattr(component, "children", None), class_name)
