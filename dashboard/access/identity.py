"""Who is asking: a user of the users file, the control-room kiosk, the local-mode admin, or nobody.

Sessions hold `user:<name>:<fingerprint>` or `kiosk:<fingerprint>`; the fingerprint changes with the
password (or the kiosk token), so changing it ends the sessions made with the old one. Roles are read
from the users file on every request: a change applies at once.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import flask_login

from pipeline.auth.roles import Role

USER, KIOSK, LOCAL, ANONYMOUS = "user", "kiosk", "local", "anonymous"


@dataclass(frozen=True)
class Identity:
    """What flask-login needs of a user, plus our role."""

    name: str
    role: Role
    kind: str
    session_id: str = ""

    @property
    def is_authenticated(self) -> bool:
        return self.kind != ANONYMOUS

    @property
    def is_active(self) -> bool:
        return self.is_authenticated

    @property
    def is_anonymous(self) -> bool:
        return not self.is_authenticated

    def get_id(self) -> str:
        return self.session_id


NOBODY = Identity("anonymous", Role.PUBLIC, ANONYMOUS)
LOCAL_ADMIN = Identity("local", Role.ADMIN, LOCAL, "local")


def kiosk_fingerprint(token: str) -> str:
    return hashlib.sha256(b"overwatch-kiosk:" + token.encode()).hexdigest()[:16]


def kiosk_identity(token: str) -> Identity:
    return Identity("control-room kiosk", Role.VIEWER, KIOSK, f"{KIOSK}:{kiosk_fingerprint(token)}")


def current_identity() -> Identity:
    """The identity of the request being served (NOBODY outside a request or when not logged in)."""
    try:
        user = flask_login.current_user
        return user if isinstance(user, Identity) else NOBODY
    except (RuntimeError, AttributeError):  # outside a request, or no login manager (unit tests)
        return NOBODY


def current_role() -> Role:
    return current_identity().role


def acting_name(typed: str | None) -> str:
    """Who an action is recorded for: the logged-in user (a typed name cannot stand in for someone
    else), or the typed name where nobody logs in (local mode)."""
    who = current_identity()
    return who.name if who.kind == USER else (typed or "").strip()
