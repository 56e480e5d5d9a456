"""Processing options: one typed, validated object per request (the original passed loose dicts).

Every subsystem accepts every common option and ignores the ones it does not use, so a time slice with a
hot-channel threshold is never an error for TPC or HLT (the original's slices only worked for EMC).
Bad values raise `OptionsError` naming the field, never a stack trace.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

HOT_CHANNEL_THRESHOLD_MAX = 1e6


class OptionsError(ValueError):
    """A bad option value; `field` names the offending input."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class OptionSpec:
    """A plug-in-declared option: name, type, default and allowed range."""

    name: str
    kind: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""


@dataclass(frozen=True)
class ProcessingOptions:
    """What a user may change when (re)processing a run or a slice."""

    scale_by_events: bool = True
    # None: each histogram's built-in default threshold (the original's 0 meant the same).
    hot_channel_threshold: float | None = None
    extra: tuple[tuple[str, Any], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not isinstance(self.scale_by_events, bool):
            raise OptionsError("scale_by_events", f"must be true or false, got {self.scale_by_events!r}")
        threshold = self.hot_channel_threshold
        if threshold is not None:
            if isinstance(threshold, bool) or not isinstance(threshold, int | float):
                raise OptionsError("hot_channel_threshold", f"must be a number, got {threshold!r}")
            if not math.isfinite(threshold) or not 0 < threshold <= HOT_CHANNEL_THRESHOLD_MAX:
                raise OptionsError(
                    "hot_channel_threshold",
                    f"must be > 0 and <= {HOT_CHANNEL_THRESHOLD_MAX:g}, got {threshold!r}",
                )
            object.__setattr__(self, "hot_channel_threshold", float(threshold))

    def get(self, name: str, default: Any = None) -> Any:
        return dict(self.extra).get(name, default)

    def cache_key(self) -> str:
        """Stable across processes and key order (the original hashed a dict's str())."""
        payload = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha1(payload.encode()).hexdigest()

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], specs: tuple[OptionSpec, ...] = ()) -> ProcessingOptions:
        """Validate user input (form values, JSON); unknown names are an error naming them."""
        known = {f.name for f in fields(cls) if f.name != "extra"}
        declared = {spec.name: spec for spec in specs}
        common: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for name, value in values.items():
            if name in known:
                common[name] = _coerce_common(name, value)
            elif name in declared:
                extra[name] = _coerce_declared(declared[name], value)
            else:
                raise OptionsError(name, "unknown option")
        return cls(**common, extra=tuple(sorted(extra.items())))


def _parse_bool(name: str, value: Any) -> bool:
    """Form values arrive as strings: "false" must not become True."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in ("true", "1", "yes", "on"):
            return True
        if lowered in ("false", "0", "no", "off"):
            return False
    raise OptionsError(name, f"must be true or false, got {value!r}")


def _coerce_common(name: str, value: Any) -> Any:
    if name == "scale_by_events":
        return _parse_bool(name, value)
    if name == "hot_channel_threshold":
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                raise OptionsError(name, f"must be a number, got {value!r}") from None
    return value


def _coerce_declared(spec: OptionSpec, value: Any) -> Any:
    if spec.kind is bool:
        return _parse_bool(spec.name, value)
    try:
        coerced = spec.kind(value)
    except (TypeError, ValueError):
        raise OptionsError(spec.name, f"must be {spec.kind.__name__}, got {value!r}") from None
    if spec.minimum is not None and coerced < spec.minimum:
        raise OptionsError(spec.name, f"must be >= {spec.minimum:g}, got {coerced!r}")
    if spec.maximum is not None and coerced > spec.maximum:
        raise OptionsError(spec.name, f"must be <= {spec.maximum:g}, got {coerced!r}")
    return coerced
