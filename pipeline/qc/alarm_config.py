"""Alarm parameters: a readable TOML file per installation, beam-type overrides, and expert changes
recorded with who, when, old and new.

Layers, each over the one before: the file (`pipeline/qc/alarms.toml`, or the one the `alarms_config`
setting names), its `[beam.<BEAM>.<SYS>."<alarm>"]` tables for the run's beam type, then the changes
experts made (`DIR/qc/alarm_thresholds.json`: for every beam type, then for the run's). Every change is
appended to `DIR/qc/alarm_threshold_changes.jsonl`. A parameter is addressed by the alarm's name, and
inside an AND/OR by `<alarm>/<condition name>`.

File format (one array of tables per subsystem):

    [[EMC]]
    name = "hot_fastors"                      # unique within the subsystem
    histograms = '^EMCTRQA_histFastORL[01]$'  # regular expression, searched in trended names
    severity = "error"                        # or "warning"
    quantity = "hot_channels"                 # a trended quantity (pipeline.qc.trending.QUANTITIES)
    content = "interval"                      # or "cumulative"
    type = "between"                          # see pipeline.qc.alarms
    min = 0
    max = 0

An aggregate has `all_of = [...]` or `any_of = [...]` (inline tables, nesting) instead of a rule; a
condition inside may set `histogram` to read another histogram's series.
"""

from __future__ import annotations

import copy
import json
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pipeline.qc.alarms import (
    AlarmCondition,
    AlarmConfigError,
    AlarmDefinition,
    AllOf,
    AnyOf,
    Condition,
    check_content,
    make_rule,
)
from pipeline.qc.results import write_json_atomically
from pipeline.qc.trending import INTERVAL, QUANTITIES
from pipeline.store_schema import BEAM_TYPE_PATTERN

DEFAULT_CONFIG_PATH = Path(__file__).with_name("alarms.toml")
THRESHOLDS_FILE = Path("qc") / "alarm_thresholds.json"
AUDIT_FILE = Path("qc") / "alarm_threshold_changes.jsonl"
SEVERITIES = ("warning", "error")
ALL_BEAMS = ""
_CONDITION_KEYS = {"name", "quantity", "content", "histogram", "type"}
_ALARM_KEYS = {"name", "histograms", "severity", "description"}


@dataclass(frozen=True)
class AlarmConfig:
    """The parsed file: per subsystem, its alarm tables as written, and the beam-type overrides."""

    path: Path
    alarms: Mapping[str, list[dict[str, Any]]]
    beam_overrides: Mapping[str, Mapping[str, Mapping[str, dict[str, Any]]]]  # beam -> SYS -> path -> params

    def definitions(
        self, subsystem: str, beam_type: str = "", changes: Mapping | None = None
    ) -> list[AlarmDefinition]:
        """The subsystem's alarms for a beam type, with expert `changes` (see `load_changes`) applied."""
        tables = self._tables(subsystem, beam_type, changes or {})
        return [_definition(subsystem, table, f"{subsystem}[{i}]") for i, table in enumerate(tables)]

    def parameter(self, subsystem: str, path: str, parameter: str, beam_type: str, changes: Mapping) -> Any:
        """The value in force of one parameter (None if unset); AlarmConfigError for an unknown path."""
        return _find_condition(self._tables(subsystem, beam_type, changes), subsystem, path).get(parameter)

    def _tables(self, subsystem: str, beam_type: str, changes: Mapping) -> list[dict[str, Any]]:
        """The alarm tables as written, then the file's beam override, the experts' changes for every
        beam type, and theirs for this beam type, each over the one before."""
        tables = copy.deepcopy(self.alarms.get(subsystem, []))
        layers = [changes.get(subsystem, {}).get(ALL_BEAMS, {})]
        if beam_type:
            layers.insert(0, self.beam_overrides.get(beam_type, {}).get(subsystem, {}))
            layers.append(changes.get(subsystem, {}).get(beam_type, {}))
        for layer in layers:
            for path, parameters in layer.items():
                for parameter, value in parameters.items():
                    _set_parameter(tables, subsystem, path, parameter, value)
        return tables


def load_alarm_config(path: Path | str | None = None) -> AlarmConfig:
    """Parse and validate an alarm file (default: the shipped one). AlarmConfigError names the bad
    field, e.g. `EMC[1].all_of[0].max`; a missing file or bad TOML names the file."""
    path = Path(path) if path else DEFAULT_CONFIG_PATH
    try:
        raw = tomllib.loads(path.read_text())
    except OSError as error:
        raise AlarmConfigError("alarms_config", f"cannot read {path}: {error.strerror}") from None
    except tomllib.TOMLDecodeError as error:
        raise AlarmConfigError("alarms_config", f"{path} is not valid TOML: {error}") from None
    beam = raw.pop("beam", {})
    alarms: dict[str, list[dict[str, Any]]] = {}
    for subsystem, tables in raw.items():
        if not isinstance(tables, list) or not all(isinstance(t, dict) for t in tables):
            raise AlarmConfigError(subsystem, "must be an array of tables ([[SYS]])")
        alarms[subsystem] = tables
    if not isinstance(beam, dict):
        raise AlarmConfigError("beam", "must be a table of beam types")
    for beam_type in beam:
        check_beam_type(beam_type, f"beam.{beam_type}")
    config = AlarmConfig(path=path, alarms=alarms, beam_overrides=beam)
    # Validate every layer once, so a bad file fails at start and not at the first snapshot.
    for subsystem in alarms:
        config.definitions(subsystem)
        for beam_type in beam:
            config.definitions(subsystem, beam_type)
    return config


def _definition(subsystem: str, table: dict[str, Any], where: str) -> AlarmDefinition:
    name = table.get("name")
    if not isinstance(name, str) or not name or "/" in name:
        raise AlarmConfigError(f"{where}.name", f"must be a non-empty name without '/', got {name!r}")
    where = f"{subsystem}.{name}"
    histograms = table.get("histograms")
    if not isinstance(histograms, str):
        raise AlarmConfigError(f"{where}.histograms", "must be a regular expression")
    try:
        re.compile(histograms)
    except re.error as error:
        raise AlarmConfigError(f"{where}.histograms", f"bad regular expression: {error}") from None
    severity = table.get("severity", "error")
    if severity not in SEVERITIES:
        raise AlarmConfigError(f"{where}.severity", f"must be one of {SEVERITIES}, got {severity!r}")
    condition_table = {k: v for k, v in table.items() if k not in _ALARM_KEYS or k == "name"}
    return AlarmDefinition(
        subsystem=subsystem,
        name=name,
        histograms=histograms,
        condition=_condition(condition_table, where),
        severity=severity,
        description=str(table.get("description", "")),
    )


def _condition(table: dict[str, Any], where: str) -> AlarmCondition:
    for key, aggregate in (("all_of", AllOf), ("any_of", AnyOf)):
        if key in table:
            children = table[key]
            if not isinstance(children, list) or not children:
                raise AlarmConfigError(f"{where}.{key}", "must be a non-empty array of conditions")
            extra = sorted(set(table) - {key, "name"})
            if extra:
                raise AlarmConfigError(f"{where}.{extra[0]}", f"not allowed beside {key}")
            return aggregate(
                tuple(
                    _condition(child, f"{where}.{key}[{i}]") if isinstance(child, dict) else _not_table(where)
                    for i, child in enumerate(children)
                )
            )
    quantity = table.get("quantity")
    if quantity not in QUANTITIES:
        raise AlarmConfigError(f"{where}.quantity", f"must be one of {sorted(QUANTITIES)}, got {quantity!r}")
    content = check_content(table.get("content", INTERVAL), where)
    histogram = table.get("histogram")
    if histogram is not None and not isinstance(histogram, str):
        raise AlarmConfigError(f"{where}.histogram", "must be a histogram name")
    parameters = {k: v for k, v in table.items() if k not in _CONDITION_KEYS}
    rule = make_rule(table.get("type", ""), parameters, where)
    return Condition(quantity, rule, content, histogram, str(table.get("name", "")))


def _not_table(where: str) -> AlarmCondition:
    raise AlarmConfigError(where, "conditions must be tables")


def _find_condition(tables: list[dict[str, Any]], subsystem: str, path: str) -> dict[str, Any]:
    """The table holding the parameters of `path` (`alarm` or `alarm/condition name`)."""
    alarm_name, _, condition_name = path.partition("/")
    for table in tables:
        if table.get("name") == alarm_name:
            if not condition_name:
                if "all_of" in table or "any_of" in table:
                    raise AlarmConfigError(
                        f"{subsystem}.{path}", "is an AND/OR: address a condition as <alarm>/<condition name>"
                    )
                return table
            found = _find_named(table, condition_name)
            if found is None:
                raise AlarmConfigError(
                    f"{subsystem}.{path}", f"{alarm_name} has no condition {condition_name!r}"
                )
            return found
    raise AlarmConfigError(f"{subsystem}.{path}", f"no alarm named {alarm_name!r}")


def _find_named(table: dict[str, Any], name: str) -> dict[str, Any] | None:
    for key in ("all_of", "any_of"):
        for child in table.get(key, []):
            if isinstance(child, dict):
                if child.get("name") == name and "all_of" not in child and "any_of" not in child:
                    return child
                found = _find_named(child, name)
                if found is not None:
                    return found
    return None


def _set_parameter(
    tables: list[dict[str, Any]], subsystem: str, path: str, parameter: str, value: Any
) -> None:
    if parameter in _CONDITION_KEYS | {"histograms", "severity", "description"}:
        raise AlarmConfigError(f"{subsystem}.{path}.{parameter}", "only rule parameters can be changed")
    _find_condition(tables, subsystem, path)[parameter] = value


# ---- expert changes ---------------------------------------------------------------------------


def load_changes(data_dir: Path) -> dict:
    """Expert changes: {SYS: {beam type ("" = all): {path: {parameter: value}}}}."""
    path = Path(data_dir) / THRESHOLDS_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}


def changes_mtime(data_dir: Path) -> float:
    """When the changes last changed (0 if never): a running service reloads its alarms then."""
    try:
        return (Path(data_dir) / THRESHOLDS_FILE).stat().st_mtime
    except FileNotFoundError:
        return 0.0


@dataclass(frozen=True)
class ThresholdChange:
    time_utc: str
    who: str
    subsystem: str
    alarm: str
    parameter: str
    beam_type: str
    old: Any
    new: Any


def check_beam_type(beam_type: object, field_name: str = "beam_type") -> str:
    """`beam_type` if it can be one as mergers report them (`BEAM_TYPE_PATTERN`), else AlarmConfigError
    saying what one looks like: a typo with spaces or punctuation would be kept but match no run."""
    if not isinstance(beam_type, str) or not BEAM_TYPE_PATTERN.fullmatch(beam_type):
        raise AlarmConfigError(
            field_name,
            f"{beam_type!r} is not a beam type: letters, digits, '_' and '-' only, as mergers report "
            "them (pp, PbPb, pPb, XeXe...); empty for every beam type",
        )
    return beam_type


def set_threshold(
    data_dir: Path,
    config: AlarmConfig,
    subsystem: str,
    alarm: str,
    parameter: str,
    value: float | int,
    who: str,
    beam_type: str = ALL_BEAMS,
) -> ThresholdChange:
    """Change one alarm parameter for a beam type ("" = every beam type), effective at the QC
    service's next snapshot, and record who, when, the old and the new value.

    Raises AlarmConfigError naming the field if `who` is empty, the alarm or parameter is unknown,
    or the new value is invalid (e.g. `EMC.hot_fastors.max: must be a finite number`); nothing is
    written then.
    """
    if not isinstance(who, str) or not who.strip():
        raise AlarmConfigError("who", "say who makes the change")
    check_beam_type(beam_type)
    data_dir = Path(data_dir)
    changes = load_changes(data_dir)
    old = config.parameter(subsystem, alarm, parameter, beam_type, changes)
    updated = copy.deepcopy(changes)
    updated.setdefault(subsystem, {}).setdefault(beam_type, {}).setdefault(alarm, {})[parameter] = value
    # Build the definitions with the change: an invalid value is refused before anything is written.
    config.definitions(subsystem, beam_type, updated)
    change = ThresholdChange(
        time_utc=datetime.now(UTC).isoformat(timespec="seconds"),
        who=who.strip(),
        subsystem=subsystem,
        alarm=alarm,
        parameter=parameter,
        beam_type=beam_type,
        old=old,
        new=value,
    )
    write_json_atomically(data_dir / THRESHOLDS_FILE, updated)
    with open(data_dir / AUDIT_FILE, "a", encoding="utf-8") as audit:
        audit.write(json.dumps(change.__dict__) + "\n")
    return change


def threshold_changes(data_dir: Path) -> list[ThresholdChange]:
    """Every recorded change, oldest first."""
    path = Path(data_dir) / AUDIT_FILE
    if not path.exists():
        return []
    return [ThresholdChange(**json.loads(line)) for line in path.read_text().splitlines() if line.strip()]
