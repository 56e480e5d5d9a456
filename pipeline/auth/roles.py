"""The roles, ordered: each one may do everything the roles below it may.

- viewer: the control-room screen (kiosk token): the control room and the system status, nothing else;
- shifter: views everything, acknowledges alarms;
- expert: time slices with options, thresholds, references, alarm settings;
- admin: users and settings.
`PUBLIC` marks what needs no login at all (`GET /status`, the login page, static files).
"""

from __future__ import annotations

import enum


class Role(enum.IntEnum):
    PUBLIC = 0
    VIEWER = 1
    SHIFTER = 2
    EXPERT = 3
    ADMIN = 4

    @property
    def label(self) -> str:
        return self.name.lower()

    @classmethod
    def parse(cls, text: str) -> Role:
        """A role a user can hold, by its name ("shifter", "expert", "admin")."""
        try:
            role = cls[text.strip().upper()]
        except KeyError:
            role = None
        if role not in USER_ROLES:
            names = ", ".join(r.label for r in USER_ROLES)
            raise ValueError(f"unknown role {text!r}: one of {names}")
        return role


# Roles a person's account can have (viewer is the kiosk's, public is nobody's).
USER_ROLES = (Role.SHIFTER, Role.EXPERT, Role.ADMIN)
