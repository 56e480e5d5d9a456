"""The role each Dash callback needs, declared next to the callback and checked by the server.

```python
@callback_role(app, Role.SHIFTER, escalate={Run.THRESHOLD: Role.EXPERT})
@app.callback(Output(...), Input(Run.GROUP, "value"), Input(Run.THRESHOLD, "value"))
def navigate(...): ...
```
A callback needs `role`; a request whose triggering inputs (`changedPropIds` of Dash's update body)
include a component listed in `escalate` needs that higher role too, so one callback can let a shifter
change the group but not the threshold. A callback nobody declared needs ADMIN (the most restrictive
role), and `undeclared(app)` lists them for the test that keeps every callback declared.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import dash

from pipeline.auth.roles import Role

log = logging.getLogger("overwatch.access")

UNDECLARED_ROLE = Role.ADMIN
# Dash adds one callback per background callback's cancel button when it serves its first request
# (`cancel_call`, output `<button>.id`): it stops a running job, so whoever may start one may cancel it.
DASH_CANCEL_ROLE = Role.SHIFTER
_EXTENSION = "overwatch.callback_roles"


@dataclass(frozen=True)
class CallbackRule:
    role: Role
    escalate: Mapping[str, Role] = field(default_factory=dict)  # component id (or pattern type) -> role


def registry(app: dash.Dash) -> dict[str, CallbackRule]:
    """The declarations of `app`, by Dash's callback key (what an update request names as `output`)."""
    return app.server.extensions.setdefault(_EXTENSION, {})


def callback_role(
    app: dash.Dash, role: Role, escalate: Mapping[str, Role] | None = None
) -> Callable[[Callable], Callable]:
    """Declare the role of the callback decorated just below (by `@app.callback`)."""

    def declare(func: Callable) -> Callable:
        keys = [
            key
            for key, entry in app.callback_map.items()
            if getattr(entry.get("callback"), "__wrapped__", None) is func
        ]
        if not keys:
            raise ValueError(f"{func.__name__}: put @callback_role above @app.callback")
        for key in keys:
            registry(app)[key] = CallbackRule(role, dict(escalate or {}))
        return func

    return declare


def _is_dash_cancel(entry: dict) -> bool:
    wrapped = getattr(entry.get("callback"), "__wrapped__", None)
    name, module = getattr(wrapped, "__name__", ""), getattr(wrapped, "__module__", "")
    return name == "cancel_call" and module == "dash.dash"


def undeclared(app: dash.Dash) -> list[str]:
    declared = registry(app)
    # Clientside callbacks run in the browser only: the server never answers them.
    return [
        key
        for key, entry in app.callback_map.items()
        if "callback" in entry and key not in declared and not _is_dash_cancel(entry)
    ]


def component_of(prop_id: str) -> str:
    """'run-opt-threshold.value' -> 'run-opt-threshold'; a pattern id -> its 'type'."""
    component = prop_id.rsplit(".", 1)[0]
    if component.startswith("{"):
        try:
            return str(json.loads(component).get("type", component))
        except (ValueError, AttributeError):
            return component
    return component


def required_role(app: dash.Dash, body: Any) -> tuple[Role, str]:
    """(role needed, what it is for) of one `POST /_dash-update-component` body."""
    if not isinstance(body, dict) or not isinstance(body.get("output"), str):
        return UNDECLARED_ROLE, "a malformed callback request"
    key = body["output"]
    rule = registry(app).get(key)
    if rule is None and _is_dash_cancel(app.callback_map.get(key) or {}):
        rule = CallbackRule(DASH_CANCEL_ROLE)
    if rule is None:
        log.warning("callback %s declares no role: %s only", key[:120], UNDECLARED_ROLE.label)
        return UNDECLARED_ROLE, f"callback {key[:80]} (declares no role)"
    needed, what = rule.role, f"callback {key[:80]}"
    changed = body.get("changedPropIds") or []
    for prop_id in changed if isinstance(changed, list) else []:
        escalated = rule.escalate.get(component_of(str(prop_id)))
        if escalated is not None and escalated > needed:
            needed, what = escalated, f"changing {prop_id}"
    return needed, what
