"""The frame around every page: navbar, "connection lost" and "server error" banners, the 404 page.

The banners are driven by `assets/connection.js` (it polls the tiny `/health` endpoint and watches
callback responses), not by Dash callbacks: when the server is gone, callbacks cannot run.
"""

from __future__ import annotations

import html as html_text

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard.ids import Shell

# (label, href) in navbar order. Pages served by other modules (System, Control room; later Trending,
# Alarms) are listed here; add one line when adding a page.
NAV_ITEMS: tuple[tuple[str, str], ...] = (
    ("Runs", "/runs"),
    ("System", "/system"),
    ("Control room", "/control-room"),
    ("Trending", "/trending"),
    ("Alarms", "/alarms"),
)
HEALTH_PATH = "/health"
CONNECTION_LOST_TEXT = "Connection to the server lost — retrying…"


def navbar(active_path: str | None = None) -> dbc.Navbar:
    links = [
        dbc.NavItem(dcc.Link(label, href=href, className="nav-link", id=f"{Shell.NAVBAR}-{href.strip('/')}"))
        for label, href in NAV_ITEMS
    ]
    return dbc.Navbar(
        dbc.Container(
            [
                dcc.Link("OVERWATCH-NG", href="/runs", className="navbar-brand page-title"),
                dbc.Nav(links, navbar=True, className="me-auto"),
            ],
            fluid=True,
        ),
        id=Shell.NAVBAR,
        color="dark",
        dark=True,
        className="page-header",
    )


def banners() -> list[html.Div]:
    """Hidden until connection.js shows them; role=alert so screen readers announce them."""
    return [
        html.Div(
            CONNECTION_LOST_TEXT,
            id=Shell.CONNECTION_LOST,
            className="connection-banner alert alert-danger",
            role="alert",
            hidden=True,
        ),
        html.Div(
            "",
            id=Shell.SERVER_ERROR,
            className="connection-banner alert alert-warning",
            role="alert",
            hidden=True,
        ),
    ]


def not_found(path: str) -> html.Div:
    """What an unknown path shows inside the app (reached by a link, without a server round trip)."""
    return html.Div(
        [
            html.H2("Page not found", className="mt-4"),
            html.P(f"Nothing lives at {path}."),
            dcc.Link("Go to the run list", href="/runs"),
        ],
        className="not-found",
    )


def not_found_html(path: str) -> str:
    """The same page as plain HTML, for the HTTP 404 answer of an unknown path."""
    shown = html_text.escape(path)
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Not found · OVERWATCH-NG</title>"
        "<link rel='stylesheet' href='/assets/bootstrap.min.css'></head><body class='p-4'>"
        f"<h1>Page not found</h1><p>Nothing lives at <code>{shown}</code>.</p>"
        "<p><a href='/runs'>Go to the run list</a></p></body></html>"
    )
