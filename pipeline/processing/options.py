"""Processing options: one typed, validated object per request (the original passed loose dicts).

Every subsystem accepts every option any detector plug-in declares, and ignores the ones it does not use,
so a time slice with a hot-channel threshold is never an error for TPC or HLT (the original's slices only
worked for EMC). What people and machines ask for is checked one level up: the run page names an option
its subsystem lacks "Not applied", the data API, downloads and notebooks refuse it
(`pipeline.processing.query.subsystem_options`). Option values are checked in one place,
`ProcessingOptions.__post_init__`, whether they come from a form (`from_mapping`) or are built in code.
Bad values raise `OptionsError` naming the field.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

HOT_CHANNEL_THRESHOLD_MAX = 1e6
# A number as people write it in a URL or a form: digits with one decimal point and an exponent. Python's
# float() also takes "1_0" (10), "nan", "inf" and surrounding spaces, which no one means in a URL.
_DECIMAL = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")


class OptionsError(ValueError):
    """A bad option value; `field` names the offending input."""

    def __init__(self, field_name: str, message: str) -> None:
        super().__init__(f"{field_name}: {message}")
        self.field = field_name


@dataclass(frozen=True)
class OptionSpec:
    """A plug-in-declared option: name, type (bool, int, float or str), default and allowed range."""

    name: str
    kind: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    description: str = ""


def known_option_specs() -> Mapping[str, OptionSpec]:
    """Every plug-in option by name: the union of the registered detector plug-ins' `option_specs`."""
    # Imported here, not at the top: the plug-ins import this module for OptionSpec.
    from pipeline.detectors import OPTION_SPECS

    return OPTION_SPECS


@dataclass(frozen=True)
class ProcessingOptions:
    """What a user may change when (re)processing a run or a slice.

    `extra` holds plug-in options as sorted (name, value) pairs (a mapping is accepted too). Each name
    must be declared by some plug-in; values are converted to the declared type, and values equal to
    the default are dropped, so asking for the default shares the cached result of not asking.
    """

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
        object.__setattr__(self, "extra", _validated_extra(self.extra))

    def get(self, name: str, default: Any = None) -> Any:
        """A plug-in option's value: as set, else its declared default, else `default`."""
        for option_name, value in self.extra:
            if option_name == name:
                return value
        spec = known_option_specs().get(name)
        return spec.default if spec is not None else default

    def cache_key(self) -> str:
        """Stable across processes and key order (the original hashed a dict's str())."""
        payload = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha1(payload.encode()).hexdigest()

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ProcessingOptions:
        """Validate user input (form values, JSON, strings included); any bad name or value raises
        OptionsError naming it."""
        common_names = {f.name for f in fields(cls) if f.name != "extra"}
        common: dict[str, Any] = {}
        extra: dict[str, Any] = {}
        for name, value in values.items():
            if name in common_names:
                common[name] = _coerce_common(name, value)
            else:
                extra[name] = value
        return cls(**common, extra=extra)


def _validated_extra(extra: Any) -> tuple[tuple[str, Any], ...]:
    if isinstance(extra, Mapping):
        pairs = list(extra.items())
    else:
        try:
            pairs = [(name, value) for name, value in extra]
        except (TypeError, ValueError):
            raise OptionsError("extra", f"must be (name, value) pairs, got {extra!r}") from None
    specs = known_option_specs()
    validated: dict[str, Any] = {}
    for name, value in pairs:
        spec = specs.get(name) if isinstance(name, str) else None
        if spec is None:
            known = ", ".join(sorted({"scale_by_events", "hot_channel_threshold", *specs}))
            raise OptionsError(str(name), f"unknown option (known: {known})")
        if name in validated:
            raise OptionsError(name, "given twice")
        validated[name] = coerce_option(spec, value)
    return tuple(sorted((name, value) for name, value in validated.items() if value != specs[name].default))


def parse_bool(name: str, value: Any) -> bool:
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


def decimal_number(text: str) -> float | None:
    """`text` as a number when it is written as one (`2`, `0.5`, `1e-3`, spaces around allowed), else
    None: the one rule for numbers in URLs and forms (minutes, thresholds, plug-in options)."""
    stripped = text.strip()
    return float(stripped) if _DECIMAL.fullmatch(stripped) else None


def not_a_number(name: str, value: Any, what: str = "a number") -> OptionsError:
    """The error for text that is not a number, with a hint for a decimal comma ("0,01")."""
    hint = " (write decimals with a point)" if isinstance(value, str) and "," in value else ""
    return OptionsError(name, f"must be {what}, got {value!r}{hint}")


def _parse_number(name: str, value: Any, kind: type) -> float | int:
    """A finite number of `kind` (int or float) from a number or a form string; never a bool."""
    parsed = value
    if isinstance(value, str):
        parsed = decimal_number(value)
        if parsed is None:
            raise not_a_number(name, value)
    if isinstance(parsed, bool) or not isinstance(parsed, int | float):
        raise OptionsError(name, f"must be a number, got {value!r}")
    if not math.isfinite(parsed):
        raise OptionsError(name, f"must be a finite number, got {value!r}")
    if kind is int:
        if parsed != int(parsed):
            raise OptionsError(name, f"must be a whole number, got {value!r}")
        return int(parsed)
    return float(parsed)


def _coerce_common(name: str, value: Any) -> Any:
    if name == "scale_by_events":
        return parse_bool(name, value)
    if name == "hot_channel_threshold":
        if value is None or (isinstance(value, str) and value.strip() == ""):
            return None
        if isinstance(value, str):
            return _parse_number(name, value, float)
    return value


def coerce_option(spec: OptionSpec, value: Any) -> Any:
    """`value` as the type `spec` declares, within its range; OptionsError naming the option if not."""
    if spec.kind is bool:
        return parse_bool(spec.name, value)
    if spec.kind in (int, float):
        coerced = _parse_number(spec.name, value, spec.kind)
    elif spec.kind is str:
        if not isinstance(value, str):
            raise OptionsError(spec.name, f"must be text, got {value!r}")
        return value
    else:
        raise OptionsError(spec.name, f"has an unsupported declared type {spec.kind.__name__}")
    if spec.minimum is not None and coerced < spec.minimum:
        raise OptionsError(spec.name, f"must be >= {spec.minimum:g}, got {value!r}")
    if spec.maximum is not None and coerced > spec.maximum:
        raise OptionsError(spec.name, f"must be <= {spec.maximum:g}, got {value!r}")
    return coerced
