"""Local mode and the refusal to start: the one rule that decides whether logins are needed.

Bound to a loopback address with no users file, the dashboard runs in LOCAL MODE: everyone is admin,
and every page says so. Bound to any other address it refuses to start without a users file, because
anyone on the network could otherwise drive it.
"""

from __future__ import annotations

from pathlib import Path

from pipeline.settings import Settings

LOOPBACK_NAMES = frozenset({"localhost", "::1", "[::1]"})


class StartRefused(RuntimeError):
    """The server must not start with these settings (the message says what to do)."""


def is_loopback(host: str) -> bool:
    return host in LOOPBACK_NAMES or host.startswith("127.")


def check_startable(settings: Settings) -> None:
    if not is_loopback(settings.dash_host) and not Path(settings.users_file).is_file():
        raise StartRefused(
            f"refusing to serve on {settings.dash_host}:{settings.dash_port} without a users file "
            f"({settings.users_file} does not exist): anyone on the network could drive the dashboard. "
            "Add a user with `python -m pipeline users add NAME --role admin` (OVERWATCH_USERS_FILE sets "
            "where), or bind to 127.0.0.1 for local mode."
        )


def local_mode(settings: Settings) -> bool:
    """Checked per request: adding the first user ends local mode at once."""
    return is_loopback(settings.dash_host) and not Path(settings.users_file).is_file()


def local_mode_text(settings: Settings) -> str:
    return (
        f"Local mode: no users file ({settings.users_file}) and bound to {settings.dash_host}, so everyone "
        "is admin. Add a user with `python -m pipeline users add NAME --role admin` to require logins."
    )
