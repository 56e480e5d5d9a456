"""The alarm parameters an expert may change, with the values in force: what a threshold form lists.

Walks the alarm file's tables (`alarm_config.AlarmConfig`): every rule parameter of every condition,
addressed as `set_threshold` takes it (`<alarm>` or `<alarm>/<condition name>` inside an AND/OR), with
its value for a beam type after the beam overrides and the experts' changes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pipeline.qc.alarm_config import AlarmConfig

# Keys of a condition table that are not rule parameters (what it reads, how it is named).
_NOT_PARAMETERS = frozenset(
    {"name", "quantity", "content", "histogram", "histograms", "type", "severity", "description"}
)
_AGGREGATES = ("all_of", "any_of")


@dataclass(frozen=True)
class AlarmParameter:
    """One changeable number of one alarm condition."""

    subsystem: str
    path: str  # `<alarm>` or `<alarm>/<condition name>`
    parameter: str  # e.g. `min`, `max`, `n`, `ratio`, `max_delta`
    value: Any  # in force for the beam type asked for
    rule: str  # the condition's `type`, e.g. `between`
    quantity: str
    content: str


def alarm_parameters(
    config: AlarmConfig, changes: Mapping, beam_type: str = "", subsystem: str | None = None
) -> list[AlarmParameter]:
    """Every rule parameter of the configured alarms (of one subsystem, or all), in file order."""
    found: list[AlarmParameter] = []
    for system, tables in config.alarms.items():
        if subsystem is not None and system != subsystem:
            continue
        for table in tables:
            for path, condition in _conditions(table, str(table.get("name", ""))):
                for parameter in condition:
                    if parameter in _NOT_PARAMETERS:
                        continue
                    found.append(
                        AlarmParameter(
                            subsystem=system,
                            path=path,
                            parameter=parameter,
                            value=config.parameter(system, path, parameter, beam_type, changes),
                            rule=str(condition.get("type", "")),
                            quantity=str(condition.get("quantity", "")),
                            content=str(condition.get("content", "interval")),
                        )
                    )
    return found


def _conditions(table: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """(path, leaf condition table) of an alarm table, depth first."""
    children = next((table[key] for key in _AGGREGATES if key in table), None)
    if children is None:
        yield path, table
        return
    alarm = path.split("/", 1)[0]
    for child in children:
        if not isinstance(child, dict):
            continue
        if any(key in child for key in _AGGREGATES):
            yield from _conditions(child, alarm)
        else:
            yield f"{alarm}/{child.get('name', '')}", child
