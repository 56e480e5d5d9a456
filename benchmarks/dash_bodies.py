"""`POST /_dash-update-component` bodies as dash-renderer sends them, built from an app's callback map.

The load benchmark and the access tests send the requests a page sends: the callback's key as
`output`, every output, input and state with its id and property, the values the page holds, and
`changedPropIds` naming what the person changed. Pattern-matching (ALL) inputs are sent as the list
of matched components given in `values` (none by default).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def callback_key(callback_map: Mapping[str, Any], *must_contain: str) -> str:
    """The one callback key holding every fragment (e.g. "run-opt-threshold.value")."""
    found = [key for key in callback_map if all(part in key for part in must_contain)]
    if len(found) != 1:
        raise LookupError(f"{len(found)} callbacks match {must_contain}")
    return found[0]


def _is_pattern(component_id: Any) -> bool:
    return isinstance(component_id, dict)


def _outputs(key: str) -> list | dict:
    parts = key.strip(".").split("...") if key.startswith("..") else [key]
    outputs = []
    for part in parts:
        component, _, prop = part.rpartition(".")
        prop = prop.split("@")[0]
        outputs.append([] if component.startswith("{") else {"id": component, "property": prop})
    return outputs if key.startswith("..") else outputs[0]


def update_body(
    callback_map: Mapping[str, Any],
    key: str,
    values: Mapping[str, Any] | None = None,
    changed: tuple[str, ...] = (),
) -> dict:
    """The body for callback `key`; `values` maps "component.property" to what the page holds."""
    values = values or {}
    entry = callback_map[key]

    def items(specs: list[dict]) -> list:
        out = []
        for spec in specs:
            component, prop = spec["id"], spec["property"]
            if _is_pattern(component) or str(component).startswith("{"):
                # The matched components, as the page lists them (key: the wildcard id as Dash writes it).
                out.append(values.get(f"{component}.{prop}", []))
            else:
                out.append({"id": component, "property": prop, "value": values.get(f"{component}.{prop}")})
        return out

    return {
        "output": key,
        "outputs": _outputs(key),
        "inputs": items(entry["inputs"]),
        "changedPropIds": list(changed),
        "state": items(entry.get("state", [])),
    }
