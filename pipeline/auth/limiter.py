"""Failed logins: a lockout with back-off per user name and per address, and the access counters.

Both live in one small SQLite file under the data folder, so every server worker counts together and a
restart does not forget a lockout. After `max_failures` failures of one key (a user name, or an
address) within `window_s`, that key is locked for `base_lock_s`, doubling with each further failure up
to `max_lock_s`. A success clears the user name's failures (not the address's: one right password must
not reset a guesser's count over many names).
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

DB_FILE = Path("access") / "access.sqlite3"

_SCHEMA = """
create table if not exists failures (key text primary key, count integer, last real, locked_until real);
create table if not exists counters (name text primary key, value integer);
"""


@dataclass(frozen=True)
class LoginLimits:
    max_failures: int = 5
    window_s: float = 900.0
    base_lock_s: float = 30.0
    max_lock_s: float = 900.0


class AccessLedger:
    """Lockouts and counters in `data_dir/access/access.sqlite3`."""

    def __init__(self, data_dir: Path, limits: LoginLimits | None = None) -> None:
        self.path = Path(data_dir) / DB_FILE
        self.limits = limits or LoginLimits()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with closing(self._connect()) as db, db:
            db.executescript(_SCHEMA)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=10.0)

    def locked_for_s(self, keys: list[str], now: float | None = None) -> float:
        """Seconds until every key is unlocked (0 when none is locked)."""
        now = time.time() if now is None else now
        with closing(self._connect()) as db:
            rows = db.execute(
                f"select max(locked_until) from failures where key in ({','.join('?' * len(keys))})", keys
            ).fetchone()
        until = rows[0] or 0.0
        return max(0.0, until - now)

    def record_failure(self, keys: list[str], now: float | None = None) -> float:
        """Count one failure for each key; the lock (s) it now carries, 0 if none."""
        now = time.time() if now is None else now
        limits = self.limits
        longest = 0.0
        with closing(self._connect()) as db, db:
            for key in keys:
                row = db.execute("select count, last from failures where key = ?", (key,)).fetchone()
                count = 1 if row is None or now - row[1] > limits.window_s else row[0] + 1
                lock_s = 0.0
                if count >= limits.max_failures:
                    lock_s = min(limits.base_lock_s * 2 ** (count - limits.max_failures), limits.max_lock_s)
                db.execute(
                    "insert or replace into failures values (?, ?, ?, ?)", (key, count, now, now + lock_s)
                )
                longest = max(longest, lock_s)
        return longest

    def clear(self, key: str) -> None:
        with closing(self._connect()) as db, db:
            db.execute("delete from failures where key = ?", (key,))

    def count(self, name: str, by: int = 1) -> None:
        with closing(self._connect()) as db, db:
            db.execute(
                "insert into counters values (?, ?) on conflict(name) do update set value = value + ?",
                (name, by, by),
            )

    def counters(self) -> dict[str, int]:
        with closing(self._connect()) as db:
            return dict(db.execute("select name, value from counters order by name").fetchall())
