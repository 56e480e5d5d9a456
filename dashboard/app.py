"""The Dash app shell: app factory, navbar, URL, page container, banners, and the 404 rule.

`create_app(settings, store=None, service=None)` builds a fresh app with every page's callbacks bound to
it (never to the global `dash` registry), so two apps in one process never collide. The pages live in
`dashboard.pages` (one module each; the registry maps paths to them); this module only routes.

Only the paths of registered pages serve the app's HTML: any other path answers HTTP 404 (a health probe
or a mistyped link must not get a 200 page). `GET /health` answers `OK` while this server runs; the
page polls it to show "connection to the server lost". `app.server` is the Flask object (for extra
routes, a login manager, or a WSGI server).
"""

from __future__ import annotations

import logging
from pathlib import Path

import dash
import diskcache
from dash import Input, Output, State, dcc, html
from flask import Flask, Response, redirect, request

from dashboard import downloads, plotly_bundle
from dashboard.access import Role, callback_role, current_identity, guard
from dashboard.access.policy import check_startable, local_mode, local_mode_text
from dashboard.access.views import register_access_routes
from dashboard.components.shell import (
    banners,
    local_mode_banner,
    navbar,
    not_allowed,
    not_found,
    not_found_html,
)
from dashboard.context import PageContext
from dashboard.ids import Shell
from dashboard.pages import PAGE_MODULES, Route, missing, resolve, routes
from dashboard.routes.status import register_status_routes
from dashboard.url_state import query_dict
from pipeline.processing.service import DISK_CACHE_SQLITE_PAGES, ProcessingService
from pipeline.settings import Settings
from pipeline.store import SnapshotStore
from pipeline.web import register_api_routes
from pipeline.web.access import requires

logger = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parent.parent / "assets"
BACKGROUND_CACHE = "background"  # folder under settings.cache_dir for background-callback results
# The rules Dash registers to serve its page for any path; only registered page paths may use them.
_INDEX_RULES = ("/", "/<path:path>")


def create_app(
    settings: Settings, store: SnapshotStore | None = None, service: ProcessingService | None = None
) -> dash.Dash:
    """A Dash app reading `store` (default: the store in `settings.data_dir`) through a
    ProcessingService (default: one caching in `settings.cache_dir`). Raises `StartRefused` when the
    settings would expose it without logins (see `dashboard.access.policy`)."""
    check_startable(settings)
    if service is None:
        service = ProcessingService.from_settings(settings, store)
    background = background_manager(settings)
    context = PageContext(settings=settings, service=service, background=background)
    bundle = plotly_bundle.installed() if settings.dash_plotly_partial_bundle else None
    app = dash.Dash(
        __name__,
        title="OVERWATCH-NG",
        assets_folder=str(ASSETS_DIR),
        external_stylesheets=[],
        serve_locally=True,
        # The tab title must not flicker "Updating..." on every refresh of a live page.
        update_title=None,
        # Page layouts come and go; their callbacks are registered once, up front.
        suppress_callback_exceptions=True,
        health_endpoint="health",
        background_callback_manager=background,
        # plotly.js: the partial bundle when installed (see dashboard.plotly_bundle).
        meta_tags=plotly_bundle.meta_tags(bundle),
        hooks=plotly_bundle.RENDERER_HOOKS,
    )
    table = routes(PAGE_MODULES)
    # First: every request, Dash's own included, passes the access check before anything else runs.
    access = guard.install(app, settings, page_role_of(table))
    register_access_routes(app.server, access)
    app.layout = shell_layout
    _register_router(app, context, table)
    for page in PAGE_MODULES:
        page.register_callbacks(app, context)
    _answer_404_for_unknown_paths(app.server, context, table)
    downloads.register_routes(app.server, context)
    # /api/...: data API and HTTP push, behind the same access rule as everything else.
    register_api_routes(app.server, service, settings, authorizer=access.seam_authorizer)
    register_status_routes(app.server, service, settings)
    _serve_favicon(app.server)
    plotly_bundle.register_route(app.server, bundle)
    return app


def background_manager(settings: Settings) -> dash.DiskcacheManager:
    """Background callbacks run in their own processes and hand results back through this disk cache,
    shared by every server worker."""
    # The SQLite page-cache cap of the view cache (DISK_CACHE_SQLITE_PAGES); else 32 MB a thread.
    cache = diskcache.Cache(
        str(settings.cache_dir / BACKGROUND_CACHE), sqlite_cache_size=DISK_CACHE_SQLITE_PAGES
    )
    return dash.DiskcacheManager(cache)


def page_role_of(table: list[Route]):
    """The role a page path needs: its module's ROLE (ADMIN if it declares none); unknown paths need
    only a login (they answer 404)."""

    def page_role(path: str) -> Role:
        found = resolve(path, table)
        return Role.VIEWER if found is None else getattr(found[0], "ROLE", Role.ADMIN)

    return page_role


def shell_layout() -> html.Div:
    """Built per request: the navbar shows who is logged in, and local mode says so on every page."""
    from flask import current_app

    settings = current_app.extensions["overwatch.access"].settings
    local = local_mode(settings)
    return html.Div(
        [
            # refresh=False: choices written to the URL push a history entry without reloading.
            dcc.Location(id=Shell.LOCATION, refresh=False),
            navbar(identity=current_identity(), local=local),
            *([local_mode_banner(local_mode_text(settings))] if local else []),
            *banners(),
            html.Main(id=Shell.PAGE, className="page-container"),
        ],
        className="overwatch-page",
    )


def _register_router(app: dash.Dash, context: PageContext, table: list[Route]) -> None:
    @callback_role(app, Role.VIEWER)  # each page then needs its own ROLE, checked here
    @app.callback(
        Output(Shell.PAGE, "children"),
        Input(Shell.LOCATION, "pathname"),
        State(Shell.LOCATION, "search"),
    )
    def route(pathname: str | None, search: str | None):
        found = resolve(pathname, table)
        if found is None:
            return not_found(pathname or "/")
        page, params = found
        needed = getattr(page, "ROLE", Role.ADMIN)
        who = current_identity()
        if who.role < needed:  # a page reached by a link inside the app: the server refuses it too
            return not_allowed(pathname or "/", needed, who)
        reason = missing(page, context, params)
        if reason is not None:
            return not_found(pathname or "/", reason)
        return page.layout(context, params, query_dict(search))


def _answer_404_for_unknown_paths(server: Flask, context: PageContext, table: list[Route]) -> None:
    @server.before_request
    def unknown_path_is_404():
        rule = request.url_rule
        if rule is None or rule.rule not in _INDEX_RULES:
            return None  # Dash's own routes, assets, and routes added by other modules
        found = resolve(request.path, table)
        if found is None:
            return Response(not_found_html(request.path), status=404, mimetype="text/html")
        page, params = found
        reason = missing(page, context, params)
        if reason is not None:  # a page's path that leads nowhere (a run with no data)
            return Response(not_found_html(request.path, reason), status=404, mimetype="text/html")
        return None


def _serve_favicon(server: Flask) -> None:
    """Browsers ask `/favicon.ico` for what is not a Dash page (`/status`, `/api/status`, the 404 page):
    point them at Dash's icon, so that no page leaves a 404 in the console."""

    @server.get("/favicon.ico")
    @requires(Role.PUBLIC)
    def favicon() -> Response:
        return redirect("/_favicon.ico", code=301)


def main() -> None:
    """Serve the dashboard alone with the production server (`python -m dashboard.app`)."""
    from dashboard.server import serve

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    serve(Settings.from_env())


if __name__ == "__main__":
    main()
