"""The plotly.js partial bundle (dashboard.plotly_bundle): fetched at install time from an npm registry
(here a local one on 127.0.0.1) and checked, served by the app with its name in the page's head, and
absent without harm. Browser checks: tests/dashboard/test_plotly_bundle_browser.py."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import logging
import re
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import plotly.graph_objects as go
import pytest

from dashboard import plotly_bundle
from dashboard.app import create_app
from pipeline.settings import Settings
from tests.dashboard.emulated_run import EmulatedRun
from tests.ports import free_tcp_port

VERSION = plotly_bundle.plotlyjs_version()
DASHBOARD = Path(plotly_bundle.__file__).resolve().parent


def fake_bundle(version: str = VERSION, body: bytes = b"var Plotly = {};\n") -> bytes:
    """A file shaped like the cartesian bundle (header and footer as published), with `body` inside."""
    header = f"/**\n* plotly.js (cartesian - minified) v{version}\n* Copyright 2012-2026, Plotly, Inc.\n*/\n"
    return header.encode() + body + b"\nwindow.Plotly = Plotly;\nreturn Plotly;\n}));\n"


def tarball(member: str, content: bytes) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as archive:
        info = tarfile.TarInfo(member)
        info.size = len(content)
        archive.addfile(info, io.BytesIO(content))
    return out.getvalue()


class Registry:
    """A local npm registry holding one version of the package: metadata and tarball, as npmjs answers."""

    def __init__(self, tgz: bytes, integrity: str | None = None) -> None:
        self.tgz = tgz
        self.integrity = integrity or "sha512-" + base64.b64encode(hashlib.sha512(tgz).digest()).decode()
        self.requests: list[str] = []
        self.port = free_tcp_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Registry:
        registry = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                registry.requests.append(self.path)
                if self.path == f"/{plotly_bundle.PACKAGE}/{VERSION}":
                    body = json.dumps(
                        {"dist": {"tarball": f"{registry.url}/package.tgz", "integrity": registry.integrity}}
                    ).encode()
                elif self.path == "/package.tgz":
                    body = registry.tgz
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_fetch_keeps_the_bundle_of_the_installed_version_checked_against_the_registry(tmp_path):
    content = fake_bundle()
    target = tmp_path / "venv" / "share" / "plotly-cartesian.min.js"
    with Registry(tarball(plotly_bundle.PACKAGE_FILE, content)) as registry:
        assert plotly_bundle.fetch(target, VERSION, registry=registry.url) == target
    assert target.read_bytes() == content
    assert registry.requests == [f"/{plotly_bundle.PACKAGE}/{VERSION}", "/package.tgz"]
    assert plotly_bundle.installed_bundle(target, VERSION) == target
    assert plotly_bundle.installed_bundle(target, "0.0.1") is None


@pytest.mark.parametrize(
    ("tgz", "integrity", "error"),
    [
        (tarball(plotly_bundle.PACKAGE_FILE, fake_bundle()), "sha512-" + "A" * 88, "sha512"),
        (tarball(plotly_bundle.PACKAGE_FILE, fake_bundle("1.2.3")), None, "v" + VERSION),
        (tarball("package/other.js", fake_bundle()), None, "no package/plotly-cartesian.min.js"),
        (tarball(plotly_bundle.PACKAGE_FILE, fake_bundle()[:-40]), None, "window.Plotly"),
    ],
    ids=["tampered tarball", "other version", "file missing", "cut short"],
)
def test_fetch_refuses_what_is_not_the_expected_bundle_and_writes_nothing(tmp_path, tgz, integrity, error):
    target = tmp_path / "plotly-cartesian.min.js"
    refused = pytest.raises(plotly_bundle.BundleError, match=re.escape(error))
    with Registry(tgz, integrity) as registry, refused:
        plotly_bundle.fetch(target, VERSION, registry=registry.url)
    assert not target.exists()


def test_fetch_from_an_unreachable_registry_is_an_os_error_and_writes_nothing(tmp_path):
    target = tmp_path / "plotly-cartesian.min.js"
    with pytest.raises(OSError):
        plotly_bundle.fetch(target, VERSION, registry=f"http://127.0.0.1:{free_tcp_port()}", timeout_s=2)
    assert not target.exists()


def test_every_trace_type_the_dashboard_builds_is_in_the_partial_bundle():
    """The figure builders name their traces as `go.<Trace>`: each must be a type the bundle holds
    (a `go.Scattergl` would draw nothing with the partial bundle)."""
    used = set()
    for source in DASHBOARD.rglob("*.py"):
        used |= set(re.findall(r"\bgo\.([A-Z][A-Za-z0-9]*)\(", source.read_text()))
    traces = {name: getattr(go, name)().to_plotly_json().get("type") for name in used - {"Figure"}}
    assert traces, "no trace builder found"
    assert {"scatter", "heatmap"} <= set(traces.values())
    assert set(traces.values()) <= plotly_bundle.PARTIAL_TRACE_TYPES, traces
    assert "plotly.express" not in "".join(p.read_text() for p in DASHBOARD.rglob("*.py"))


@pytest.fixture(scope="module")
def emc_data(tmp_path_factory) -> Path:
    run = EmulatedRun(tmp_path_factory.mktemp("data"), time.time() - 400.0)
    run.store_snapshot()
    return run.store.data_dir


def _client(emc_data, tmp_path, monkeypatch, bundle: Path, **settings):
    monkeypatch.setattr(plotly_bundle, "bundle_file", lambda version, prefix=None: bundle)
    app = create_app(Settings(data_dir=emc_data, cache_dir=tmp_path / "cache", **settings))
    return app.server.test_client()


def test_the_app_serves_the_installed_bundle_and_names_it_in_every_page(emc_data, tmp_path, monkeypatch):
    bundle = tmp_path / f"plotly-cartesian-{VERSION}.min.js"
    bundle.write_bytes(fake_bundle())
    client = _client(emc_data, tmp_path, monkeypatch, bundle)
    page = client.get("/runs").get_data(as_text=True)
    url = f"/_overwatch/plotly/{bundle.name}"
    assert f'<meta name="overwatch-plotly" content="{url}"' in page
    assert f'data-fallback="{plotly_bundle.DCC_BUNDLE}"' in page
    assert "request_pre: function" in page  # the renderer hook that starts the download
    served = client.get(url)
    assert served.status_code == 200 and served.data == fake_bundle()
    assert served.mimetype == "text/javascript"
    assert served.cache_control.max_age == plotly_bundle.ONE_YEAR_S and served.cache_control.immutable
    assert client.get("/_overwatch/plotly/other.js").status_code == 404
    # dcc's own bundle stays served: the page falls back to it if ours fails to load.
    assert client.get(plotly_bundle.DCC_BUNDLE).status_code == 200


def test_without_the_bundle_pages_use_dccs_and_the_log_says_so(emc_data, tmp_path, monkeypatch, caplog):
    missing = tmp_path / "nowhere" / f"plotly-cartesian-{VERSION}.min.js"
    with caplog.at_level(logging.WARNING, logger="dashboard.plotly_bundle"):
        client = _client(emc_data, tmp_path, monkeypatch, missing)
    notes = [r.getMessage() for r in caplog.records if r.name == "dashboard.plotly_bundle"]
    assert len(notes) == 1 and str(missing) in notes[0] and "dcc's full plotly.js" in notes[0]
    assert 'name="overwatch-plotly"' not in client.get("/runs").get_data(as_text=True)
    assert client.get(f"/_overwatch/plotly/{missing.name}").status_code == 404


def test_the_setting_turns_the_bundle_off(emc_data, tmp_path, monkeypatch):
    bundle = tmp_path / f"plotly-cartesian-{VERSION}.min.js"
    bundle.write_bytes(fake_bundle())
    client = _client(emc_data, tmp_path, monkeypatch, bundle, dash_plotly_partial_bundle=False)
    assert 'name="overwatch-plotly"' not in client.get("/runs").get_data(as_text=True)
    assert client.get(f"/_overwatch/plotly/{bundle.name}").status_code == 404


def test_the_install_command_fetches_once_and_fails_softly(tmp_path, monkeypatch, capsys):
    target = tmp_path / f"plotly-cartesian-{VERSION}.min.js"
    monkeypatch.setattr(plotly_bundle, "bundle_file", lambda version, prefix=None: target)
    unreachable = f"http://127.0.0.1:{free_tcp_port()}"
    assert plotly_bundle.main(["fetch", "--registry", unreachable]) == 1
    assert "pages use dcc's full bundle" in capsys.readouterr().err and not target.exists()
    with Registry(tarball(plotly_bundle.PACKAGE_FILE, fake_bundle())) as registry:
        assert plotly_bundle.main(["fetch", "--registry", registry.url]) == 0
        assert plotly_bundle.main(["fetch", "--registry", registry.url]) == 0
    assert len(registry.requests) == 2  # the second run found it installed
    assert target.read_bytes() == fake_bundle()
