"""The users file: one TOML table per user with its role and argon2 password hash.

```toml
[users.alice]
role = "expert"
password = "$argon2id$v=19$m=65536,t=3,p=4$..."
```
It is read again whenever it changes on disk (several server workers, and `python -m pipeline users`
editing it while they run), written atomically with mode 0600, and never holds a password in clear.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from pipeline import atomic_files
from pipeline.auth.roles import Role

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
MIN_PASSWORD_LENGTH = 8
_HASHER = PasswordHasher()  # argon2id with the library's recommended parameters
# Verified when the user does not exist, so that a wrong name costs as long as a wrong password.
_DUMMY_HASH = _HASHER.hash("overwatch-ng: no such user")


class UsersFileError(ValueError):
    """The users file or a change to it is invalid (the message says how)."""


@dataclass(frozen=True)
class UserRecord:
    name: str
    role: Role
    password_hash: str

    @property
    def fingerprint(self) -> str:
        """Changes with the password: a session made before a password change is no longer valid."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UsersFileError(f"password too short: at least {MIN_PASSWORD_LENGTH} characters")
    return _HASHER.hash(password)


def check_name(name: str) -> str:
    if not NAME_PATTERN.fullmatch(name):
        raise UsersFileError(f"bad user name {name!r}: letters, digits, '_', '.', '-' (at most 64)")
    return name


class UsersFile:
    """The users of `path`, reloaded when the file's modification time or size changes."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._stamp: tuple[int, int] | None = None
        self._users: dict[str, UserRecord] = {}

    def exists(self) -> bool:
        return self.path.is_file()

    def users(self) -> dict[str, UserRecord]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._stamp, self._users = None, {}
            return {}
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._users = _parse(self.path)
            self._stamp = stamp
        return dict(self._users)

    def get(self, name: str) -> UserRecord | None:
        return self.users().get(name)

    def verify(self, name: str, password: str) -> UserRecord | None:
        """The user if the password is right, else None (same cost whether or not the user exists)."""
        record = self.get(name)
        try:
            _HASHER.verify(record.password_hash if record else _DUMMY_HASH, password)
        except (VerificationError, InvalidHashError):
            return None
        return record

    # ---- changes (the CLI and the admin page) ----

    def set_user(self, name: str, role: Role | None = None, password: str | None = None) -> UserRecord:
        """Add a user (role and password needed) or change an existing one's role and/or password."""
        users = self.users()
        check_name(name)
        old = users.get(name)
        if old is None and (role is None or password is None):
            raise UsersFileError(f"no user {name!r}: adding one needs a role and a password")
        record = UserRecord(
            name,
            role if role is not None else old.role,
            hash_password(password) if password is not None else old.password_hash,
        )
        users[name] = record
        self._write(users)
        return record

    def remove(self, name: str) -> None:
        users = self.users()
        if name not in users:
            raise UsersFileError(f"no user {name!r}")
        del users[name]
        self._write(users)

    def _write(self, users: dict[str, UserRecord]) -> None:
        lines = ["# overwatch-ng users: edit with `python -m pipeline users ...` (argon2 hashes only)", ""]
        for record in sorted(users.values(), key=lambda r: r.name):
            lines += [
                f'[users."{record.name}"]',
                f'role = "{record.role.label}"',
                f'password = "{record.password_hash}"',
                "",
            ]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        atomic_files.write_file(self.path, "\n".join(lines), mode=0o600)
        self._stamp = None


def _parse(path: Path) -> dict[str, UserRecord]:
    try:
        raw = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise UsersFileError(f"cannot read users file {path}: {error}") from error
    users: dict[str, UserRecord] = {}
    for name, entry in (raw.get("users") or {}).items():
        try:
            check_name(name)
            role = Role.parse(str(entry["role"]))
            password_hash = str(entry["password"])
        except (KeyError, TypeError, ValueError) as error:
            raise UsersFileError(f"users file {path}: user {name!r}: {error}") from error
        if not password_hash.startswith("$argon2"):
            raise UsersFileError(f"users file {path}: user {name!r}: password must be an argon2 hash")
        users[name] = UserRecord(name, role, password_hash)
    return users
