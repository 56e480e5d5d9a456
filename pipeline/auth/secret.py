"""The session-signing secret: random, made on first start, kept in a 0600 file, shared by workers.

There is no default secret (the original signed sessions with the literal "false"). Several gunicorn
workers start at once: the file is created complete under a temporary name and hard-linked into place,
so exactly one key wins and every worker reads that one.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pipeline import atomic_files

SECRET_FILE = "secret_key"
SECRET_BYTES = 32


def load_or_create_secret(data_dir: Path) -> bytes:
    path = Path(data_dir) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        # Not replacing: if another worker got there first, theirs is kept.
        atomic_files.write_file(path, secrets.token_hex(SECRET_BYTES), replace=False, mode=0o600)
    key = path.read_text().strip()
    if len(key) < 2 * SECRET_BYTES:
        raise ValueError(f"{path} holds no usable key: delete it and a new one is made")
    return key.encode()
