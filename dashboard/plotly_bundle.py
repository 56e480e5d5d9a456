"""plotly.js for the pages: the official cartesian partial bundle when the install step fetched it, else
the full bundle dcc.Graph loads by itself.

Why: evaluating plotly.js is the largest single cost of a cold page in the browser. The full bundle
(4.8 MB: every trace type, maps and 3D included) takes about 1.0 s of renderer CPU; the cartesian
partial bundle of the same version (1.5 MB) about 0.4 s. Our figures draw only `scatter` and `heatmap`
traces, which it holds (`PARTIAL_TRACE_TYPES`; a unit test keeps every figure builder inside it).

Install time, never run time: `python -m dashboard.plotly_bundle fetch` (run by scripts/bootstrap.sh)
downloads the npm package `plotly.js-cartesian-dist-min` of exactly the plotly.js version that the
installed plotly (and so dcc.Graph) ships, checks it against the registry's sha512, and keeps its one
file in the venv (`<sys.prefix>/share/overwatch-ng/`). Third-party code is never part of this repository.

Run time: the page names the file in a `<meta name="overwatch-plotly">` tag, and `assets/plotly-bundle.js`
loads it while the page waits for its first callback (dcc.Graph uses `window.Plotly` when the page
defined it, and then never loads its own). Without the file, pages work as before on dcc's bundle, and
each server process says so once in its log.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import logging
import sys
import tarfile
import urllib.request
from pathlib import Path

from flask import Flask, Response, send_file

from pipeline.atomic_files import write_file
from pipeline.auth.roles import Role
from pipeline.web.access import requires

log = logging.getLogger(__name__)

PACKAGE = "plotly.js-cartesian-dist-min"
PACKAGE_FILE = "package/plotly-cartesian.min.js"
REGISTRY = "https://registry.npmjs.org"
# What the cartesian bundle registers (its README); the figures must stay inside it.
PARTIAL_TRACE_TYPES = frozenset(
    {
        "bar",
        "box",
        "contour",
        "heatmap",
        "histogram",
        "histogram2d",
        "histogram2dcontour",
        "image",
        "pie",
        "scatter",
        "scatterternary",
        "violin",
    }
)
ROUTE = "/_overwatch/plotly/<name>"
META_NAME = "overwatch-plotly"
# dcc.Graph's own full bundle, served by Dash from the plotly package: the fallback if ours fails to load.
DCC_BUNDLE = "/_dash-component-suites/plotly/package_data/plotly.min.js"
ONE_YEAR_S = 365 * 24 * 3600


class BundleError(RuntimeError):
    """The partial bundle could not be fetched or is not the one expected."""


def plotlyjs_version() -> str:
    """The plotly.js version the installed plotly (and so dcc.Graph) ships."""
    from plotly.offline import get_plotlyjs_version

    return get_plotlyjs_version()


def bundle_file(version: str, prefix: str | Path = sys.prefix) -> Path:
    """Where the install step keeps the partial bundle of `version` (inside the venv)."""
    return Path(prefix) / "share" / "overwatch-ng" / f"plotly-cartesian-{version}.min.js"


def check_bundle(content: bytes, version: str) -> None:
    """Raise BundleError unless `content` is the cartesian bundle of `version` that defines window.Plotly."""
    head, tail = content[:300], content[-200:]
    if b"(cartesian - minified) v" + version.encode() + b"\n" not in head:
        raise BundleError(f"not the cartesian bundle of plotly.js v{version}: {head[:80]!r}")
    if b"window.Plotly = Plotly" not in tail:
        raise BundleError("the bundle does not define window.Plotly")


def installed_bundle(path: Path, version: str) -> Path | None:
    """`path` when it holds the partial bundle of `version`, else None."""
    try:
        check_bundle(path.read_bytes(), version)
    except (OSError, BundleError):
        return None
    return path


def fetch(path: Path, version: str, registry: str = REGISTRY, timeout_s: float = 10.0) -> Path:
    """Download the partial bundle of `version` from the npm registry into `path` (atomically), checked
    against the registry's sha512 and `check_bundle`. Raises BundleError or OSError. `timeout_s` per
    request: an offline machine (the control room) runs the install script on every start."""
    metadata = json.loads(_get(f"{registry}/{PACKAGE}/{version}", timeout_s))
    try:
        tarball_url, integrity = metadata["dist"]["tarball"], metadata["dist"]["integrity"]
    except (KeyError, TypeError) as error:
        raise BundleError(f"{PACKAGE}@{version}: no dist in the registry's answer") from error
    tarball = _get(tarball_url, timeout_s)
    algorithm, _, expected = integrity.partition("-")
    if algorithm != "sha512":
        raise BundleError(f"{PACKAGE}@{version}: unexpected integrity {algorithm!r}")
    if base64.b64encode(hashlib.sha512(tarball).digest()).decode() != expected:
        raise BundleError(f"{PACKAGE}@{version}: the tarball does not match the registry's sha512")
    with tarfile.open(fileobj=io.BytesIO(tarball), mode="r:gz") as archive:
        try:
            member = archive.extractfile(PACKAGE_FILE)
        except KeyError as error:
            raise BundleError(f"{PACKAGE}@{version}: no {PACKAGE_FILE} in the tarball") from error
        content = member.read() if member is not None else b""
    check_bundle(content, version)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, content)
    return path


def _get(url: str, timeout_s: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return response.read()


# Dash's renderer calls this before each callback request: the first one starts the bundle's download.
RENDERER_HOOKS = {
    "request_pre": "function () { if (window.overwatchLoadPlotly) { window.overwatchLoadPlotly(); } }"
}


def installed(path: Path | None = None) -> Path | None:
    """The partial bundle this server serves (`path`, default this venv's `bundle_file`), or None (logged)
    when it is not installed or not the version dcc.Graph expects."""
    version = plotlyjs_version()
    expected = path or bundle_file(version)
    found = installed_bundle(expected, version)
    if found is None:
        log.warning(
            "plotly.js partial bundle %s not installed: pages load dcc's full plotly.js (about 0.6 s more"
            " browser CPU on a cold load); `python -m dashboard.plotly_bundle fetch` installs it",
            expected,
        )
    return found


def meta_tags(bundle: Path | None) -> list[dict[str, str]]:
    """The page head's tag naming the bundle for assets/plotly-bundle.js (none without a bundle)."""
    if bundle is None:
        return []
    return [{"name": META_NAME, "content": ROUTE.replace("<name>", bundle.name), "data-fallback": DCC_BUNDLE}]


def register_route(server: Flask, bundle: Path | None) -> None:
    """Serve `bundle` at ROUTE (nothing without a bundle)."""
    if bundle is None:
        return

    @server.get(ROUTE, endpoint="overwatch_plotly_bundle")
    @requires(Role.PUBLIC)
    def plotly_bundle(name: str) -> Response:
        if name != bundle.name or not bundle.is_file():  # removed since start: the page falls back
            return Response("not found", status=404, mimetype="text/plain")
        # The version is in the name: a browser may keep it as long as it likes.
        response = send_file(bundle, mimetype="text/javascript", max_age=ONE_YEAR_S)
        response.cache_control.immutable = True
        return response


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Fetch the plotly.js cartesian partial bundle into the venv (install time only)."
    )
    parser.add_argument("command", choices=["fetch"])
    parser.add_argument("--registry", default=REGISTRY)
    args = parser.parse_args(argv)
    version = plotlyjs_version()
    path = bundle_file(version)
    if installed_bundle(path, version) is not None:
        return 0  # installed: nothing to say (bootstrap runs this every time)
    try:
        fetch(path, version, registry=args.registry)
    except (BundleError, OSError, ValueError) as error:
        print(
            f"plotly bundle: {PACKAGE}@{version} not fetched ({error}); pages use dcc's full bundle",
            file=sys.stderr,
        )
        return 1
    print(f"plotly bundle: {PACKAGE}@{version} -> {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
