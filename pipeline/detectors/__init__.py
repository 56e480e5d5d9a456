"""Detector plug-ins: one module per subsystem, each exposing `PLUGIN`, found here automatically.

Adding a detector means adding one module to this package; `plugin_for` gives every other subsystem
the generic plug-in (one catch-all group). `OPTION_SPECS` is the union of the plug-ins' declared options:
every subsystem accepts all of them (see `pipeline.processing.options`).
"""

from __future__ import annotations

import importlib
import pkgutil
from functools import cache

from pipeline.detectors.base import DetectorPlugin, generic_plugin
from pipeline.processing.options import OptionSpec, ProcessingOptions

# Modules of this package that hold shared code rather than a detector.
_NOT_DETECTORS = frozenset({"base", "checks", "names"})


def _discover_plugins() -> dict[str, DetectorPlugin]:
    plugins: dict[str, DetectorPlugin] = {}
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name):
        if module_info.name in _NOT_DETECTORS or module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        plugin = getattr(module, "PLUGIN", None)
        if not isinstance(plugin, DetectorPlugin):
            raise TypeError(f"{module.__name__} must define PLUGIN as a DetectorPlugin")
        if plugin.subsystem in plugins:
            raise ValueError(f"two detector modules claim subsystem {plugin.subsystem!r}")
        plugins[plugin.subsystem] = plugin
    return plugins


def _union_of_option_specs(plugins: list[DetectorPlugin]) -> dict[str, OptionSpec]:
    """Every declared option by name; two plug-ins may share an option only if they declare it alike."""
    common = {name for name in ProcessingOptions.__dataclass_fields__ if name != "extra"}
    specs: dict[str, OptionSpec] = {}
    for plugin in plugins:
        for spec in plugin.option_specs:
            if spec.name in common:
                raise ValueError(f"{plugin.subsystem}: option {spec.name!r} is a common option")
            if specs.setdefault(spec.name, spec) != spec:
                raise ValueError(f"plug-ins declare option {spec.name!r} differently")
    return specs


PLUGINS: dict[str, DetectorPlugin] = _discover_plugins()
OPTION_SPECS: dict[str, OptionSpec] = _union_of_option_specs(list(PLUGINS.values()))


@cache
def plugin_for(subsystem: str) -> DetectorPlugin:
    """The subsystem's plug-in, or the generic one for a subsystem without a module."""
    return PLUGINS.get(subsystem) or generic_plugin(subsystem)


__all__ = ["OPTION_SPECS", "PLUGINS", "DetectorPlugin", "plugin_for"]
