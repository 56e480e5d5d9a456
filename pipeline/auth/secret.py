"""The session-signing secret: random, made on first start, kept in a 0600 file, shared by workers.

There is no default secret (the original signed sessions with the literal "false"). Several gunicorn
workers start at once: the file is created complete under a temporary name and hard-linked into place,
so exactly one key wins and every worker reads that one.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SECRET_FILE = "secret_key"
SECRET_BYTES = 32


def load_or_create_secret(data_dir: Path) -> bytes:
    path = Path(data_dir) / SECRET_FILE
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
        descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as out:
            out.write(secrets.token_hex(SECRET_BYTES))
        try:
            os.link(tmp, path)  # fails if another worker got there first: theirs is kept
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    key = path.read_text().strip()
    if len(key) < 2 * SECRET_BYTES:
        raise ValueError(f"{path} holds no usable key: delete it and a new one is made")
    return key.encode()
