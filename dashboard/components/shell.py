"""The frame around every page: navbar, "connection lost" and "server error" banners, the 404 page.

The banners are driven by `assets/connection.js` (it polls the tiny `/health` endpoint and watches
callback responses), not by Dash callbacks: when the server is gone, callbacks cannot run.
"""

from __future__ import annotations

import html as html_text

import dash_bootstrap_components as dbc
from dash import dcc, html
from flask_wtf.csrf import generate_csrf

from dashboard.access.identity import NOBODY, Identity
from dashboard.ids import Shell
from pipeline.auth.roles import Role

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


def navbar(active_path: str | None = None, identity: Identity = NOBODY, local: bool = False) -> dbc.Navbar:
    links = [
        dbc.NavItem(dcc.Link(label, href=href, className="nav-link", id=f"{Shell.NAVBAR}-{href.strip('/')}"))
        for label, href in NAV_ITEMS
    ]
    if identity.role >= Role.ADMIN:
        links.append(dbc.NavItem(html.A("Users", href="/admin/users", className="nav-link")))
    return dbc.Navbar(
        dbc.Container(
            [
                dcc.Link("OVERWATCH-NG", href="/runs", className="navbar-brand page-title"),
                dbc.Nav(links, navbar=True, className="me-auto"),
                identity_bar(identity, local),
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


def not_found(path: str, reason: str | None = None) -> html.Div:
    """What an unknown path shows inside the app (reached by a link, without a server round trip);
    `reason` says why a page's path leads nowhere (a run with no data)."""
    return html.Div(
        [
            html.H2("Page not found", className="mt-4"),
            html.P(reason or f"Nothing lives at {path}.", className="not-found-reason"),
            dcc.Link("Go to the run list", href="/runs"),
        ],
        className="not-found",
    )


def not_found_html(path: str, reason: str | None = None) -> str:
    """The same page as plain HTML, for the HTTP 404 answer of an unknown path."""
    said = html_text.escape(reason) if reason else f"Nothing lives at <code>{html_text.escape(path)}</code>."
    return (
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>Not found · OVERWATCH-NG</title>"
        "<link rel='stylesheet' href='/assets/bootstrap.min.css'></head><body class='p-4'>"
        f"<h1>Page not found</h1><p class='not-found-reason'>{said}</p>"
        "<p><a href='/runs'>Go to the run list</a></p></body></html>"
    )


def identity_bar(identity: Identity, local: bool) -> html.Div:
    """Who is logged in and as what, and the way out (a POST with the CSRF token, like every change)."""
    if local:
        return html.Div(
            dbc.Badge(
                "LOCAL MODE · everyone is admin", color="warning", text_color="dark", id=Shell.LOCAL_BADGE
            ),
            className="identity-bar",
        )
    if not identity.is_authenticated:
        return html.Div(className="identity-bar")
    return html.Div(
        [
            html.Span(identity.name, className="text-light me-2", id=Shell.USER_NAME),
            dbc.Badge(identity.role.label, color="info", className="me-2", id=Shell.USER_ROLE),
            html.Form(
                [
                    dcc.Input(
                        type="hidden", name="csrf_token", value=generate_csrf(), id="shell-logout-token"
                    ),
                    html.Button("Log out", type="submit", className="btn btn-sm btn-outline-light"),
                ],
                action="/logout",
                method="POST",
                className="d-inline",
                id=Shell.LOGOUT,
            ),
        ],
        className="identity-bar d-flex align-items-center",
    )


def local_mode_banner(text: str) -> html.Div:
    """Visible on every page (the control room too) while nobody has to log in."""
    return html.Div(
        text, id=Shell.LOCAL_BANNER, className="local-mode-banner alert alert-warning mb-0", role="note"
    )


def not_allowed(path: str, needed: Role, identity: Identity) -> html.Div:
    return html.Div(
        [
            html.H2("Not allowed", className="mt-4"),
            html.P(f"{path} needs the {needed.label} role; you are {identity.name} ({identity.role.label})."),
            dcc.Link("Go to the run list", href="/runs"),
        ],
        className="not-allowed",
    )
