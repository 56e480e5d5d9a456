"""Control builders every page uses the same way: a labelled dropdown, radio items drawn as buttons."""

from __future__ import annotations

import dash_bootstrap_components as dbc
from dash import dcc


def list_selector(
    label: str, component_id: str, placeholder: str, options: list[dict] | None = None, value: object = None
) -> tuple[dbc.Label, dcc.Dropdown]:
    """A labelled dropdown of a list the callbacks fill (groups, histograms)."""
    return (
        dbc.Label(label, html_for=component_id, className="control-label"),
        dcc.Dropdown(
            id=component_id,
            options=options or [],
            value=value,
            clearable=False,
            placeholder=placeholder,
            maxHeight=480,
            className="mb-2",
        ),
    )


def button_group(
    component_id: str, options: list[dict], value: str | None, class_name: str, button_class: str
) -> dbc.RadioItems:
    """Radio items drawn as a row of toggle buttons (Bootstrap's btn-check), the checked one active;
    the inputs stay focusable, so arrow keys move the choice."""
    return dbc.RadioItems(
        id=component_id,
        options=options,
        value=value,
        inline=True,
        className=f"btn-group {class_name}",
        inputClassName="btn-check",
        labelClassName=button_class,
        labelCheckedClassName="active",
    )
