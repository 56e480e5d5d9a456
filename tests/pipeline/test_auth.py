"""Users file, users CLI, session secret and the failed-login ledger, without a web server."""

from __future__ import annotations

import os
import stat
import subprocess
import sys

import pytest

from pipeline.auth.limiter import AccessLedger, LoginLimits
from pipeline.auth.roles import Role
from pipeline.auth.secret import load_or_create_secret
from pipeline.auth.users import UsersFile, UsersFileError

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_users_file_holds_argon2_hashes_only_with_mode_0600(tmp_path):
    users = UsersFile(tmp_path / "users.toml")
    users.set_user("alice", Role.EXPERT, "correct horse")
    text = (tmp_path / "users.toml").read_text()
    assert "correct horse" not in text and "$argon2id$" in text
    assert stat.S_IMODE((tmp_path / "users.toml").stat().st_mode) == 0o600
    assert users.verify("alice", "correct horse").role is Role.EXPERT
    assert users.verify("alice", "wrong horse!") is None
    assert users.verify("nobody", "correct horse") is None


def test_a_changed_password_changes_the_fingerprint_and_another_process_sees_it(tmp_path):
    first, second = UsersFile(tmp_path / "u.toml"), UsersFile(tmp_path / "u.toml")
    before = first.set_user("bob", Role.SHIFTER, "password-one").fingerprint
    assert second.get("bob").fingerprint == before
    second.set_user("bob", password="password-two")
    assert first.get("bob").fingerprint != before  # re-read on change: old sessions end
    assert first.get("bob").role is Role.SHIFTER


@pytest.mark.parametrize(
    ("name", "role", "password", "fragment"),
    [
        ("bad name", Role.SHIFTER, "long enough", "bad user name"),
        ("carol", Role.SHIFTER, "short", "too short"),
        ("dave", None, "long enough", "needs a role"),
    ],
)
def test_bad_users_are_refused_with_a_reason(tmp_path, name, role, password, fragment):
    with pytest.raises(UsersFileError, match=fragment):
        UsersFile(tmp_path / "u.toml").set_user(name, role, password)
    with pytest.raises(ValueError, match="unknown role"):
        Role.parse("viewer")  # the kiosk's role is nobody's account


def test_a_clear_text_password_in_the_file_is_refused(tmp_path):
    path = tmp_path / "u.toml"
    path.write_text('[users.eve]\nrole = "admin"\npassword = "hunter2"\n')
    with pytest.raises(UsersFileError, match="argon2 hash"):
        UsersFile(path).users()


def _cli(tmp_path, *args, password=None):
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "users", "--file", str(tmp_path / "users.toml"), *args],
        input=password, capture_output=True, text=True, cwd=REPO, timeout=60,
    )  # fmt: skip


def test_users_cli_adds_sets_passwords_and_roles_from_stdin(tmp_path):
    added = _cli(tmp_path, "add", "alice", "--role", "shifter", password="first-password\n")
    assert added.returncode == 0, added.stderr
    assert _cli(tmp_path, "add", "alice", "--role", "admin", password="x" * 9 + "\n").returncode == 2
    assert _cli(tmp_path, "passwd", "alice", password="second-password\n").returncode == 0
    assert _cli(tmp_path, "role", "alice", "expert").returncode == 0
    listing = _cli(tmp_path, "list")
    assert listing.stdout.strip() == "alice\texpert"
    users = UsersFile(tmp_path / "users.toml")
    assert users.verify("alice", "second-password") is not None
    assert users.verify("alice", "first-password") is None
    short = _cli(tmp_path, "passwd", "alice", password="short\n")
    assert short.returncode == 2 and "too short" in short.stderr and "short\n" not in short.stdout


def test_secret_is_random_kept_0600_and_shared(tmp_path):
    key = load_or_create_secret(tmp_path)
    assert len(key) == 64 and key == load_or_create_secret(tmp_path)
    assert stat.S_IMODE((tmp_path / "secret_key").stat().st_mode) == 0o600
    assert load_or_create_secret(tmp_path / "other") != key


def test_lockout_backs_off_per_key_and_a_success_clears_the_name(tmp_path):
    ledger = AccessLedger(tmp_path, LoginLimits(max_failures=3, window_s=60, base_lock_s=10, max_lock_s=25))
    keys = ["user:alice", "addr:10.0.0.1"]
    assert [ledger.record_failure(keys, now=100.0 + i) for i in range(5)] == [0, 0, 10, 20, 25]
    assert ledger.locked_for_s(["user:alice"], now=110.0) == pytest.approx(19.0)
    assert ledger.locked_for_s(["user:bob"], now=110.0) == 0
    ledger.clear("user:alice")
    assert ledger.locked_for_s(["user:alice"], now=110.0) == 0
    assert ledger.locked_for_s(["addr:10.0.0.1"], now=110.0) > 0  # the address keeps its count
    assert ledger.record_failure(["user:alice"], now=1000.0) == 0  # outside the window: counted afresh
    ledger.count("login_failed", 2)
    assert AccessLedger(tmp_path).counters() == {"login_failed": 2}  # shared through the file
