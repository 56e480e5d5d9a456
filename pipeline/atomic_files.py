"""Files that appear complete or not at all: the one way this project writes a file atomically, and the
one cleanup of what a killed writer leaves behind.

A file is written without any name (Linux `O_TMPFILE`), fsynced, then given its final name with
`linkat`. While it is being written it is in no folder, so no reader of the data tree can list it
(DuckDB's `**/*` glob lists hidden files and folders too), and a writer killed mid-write leaves nothing:
the kernel frees an unnamed file when its last descriptor closes. Replacing an existing file needs a
rename, so a complete file is linked to a hidden temp name beside the target and renamed over it; only
a writer killed between those two calls leaves a (complete) temp file. Where `O_TMPFILE` is not
available (e.g. NFS), the file is written under that hidden temp name from the start.

Temp names are `.<final name>.<pid>.<random hex>.tmp`: `remove_stale_temp_files` removes those of
writers that no longer run, and every writing process calls it at start for the folders it writes.
"""

from __future__ import annotations

import errno
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable
from pathlib import Path

__all__ = ["TEMP_SUFFIX", "final_name_of_temp", "remove_stale_temp_files", "write_file"]

TEMP_SUFFIX = ".tmp"
# Where the kernel lets a process reach its own descriptors by path (to link an unnamed file).
_OWN_DESCRIPTORS = "/proc/self/fd"
# What open(O_TMPFILE) raises where the file system (or kernel) cannot make unnamed files.
_NO_UNNAMED_FILES = frozenset({errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL, errno.ENOENT})
# A hidden name ending in TEMP_SUFFIX; the writer's pid is in it when this module named it (older
# versions of this project used other temp names, which only their age can clear).
_TEMP_NAME = re.compile(r"^\..+" + re.escape(TEMP_SUFFIX) + "$")
_WRITER_PID = re.compile(r"\.(?P<pid>[0-9]+)\.[0-9a-f]+" + re.escape(TEMP_SUFFIX) + "$")

# What a file's content can be given as: bytes, text (UTF-8), or a function that writes the file at
# the path it is given (for writers that want a path, e.g. pyarrow or uproot).
Content = bytes | memoryview | str | Callable[[str], None]


def write_file(
    path: Path, content: Content, *, replace: bool = True, durable: bool = True, mode: int = 0o644
) -> bool:
    """Write `path` atomically: readers see the old file (or none) until the new one is complete.

    `replace=False` never replaces an existing file: returns False (and writes nothing) if `path` is
    taken, also when several writers race for it; otherwise True. `durable` fsyncs the file and its
    folder (skip it for files that can be recomputed). `mode` is the file's permission bits, exactly.
    Raises OSError as the file system does (e.g. ENOSPC); nothing is left behind then.
    """
    path = Path(path)
    draft = _Draft.open(path.parent, path.name, mode)
    try:
        _fill(draft, content)
        if durable:
            os.fsync(draft.descriptor)
        if not replace:
            try:
                draft.link_to(path)
            except FileExistsError:
                return False
        else:
            os.replace(draft.named(), path)
        if durable:
            _fsync_folder(path.parent)
        return True
    finally:
        draft.discard()


def remove_stale_temp_files(folders: Iterable[Path], max_age_s: float = 3600.0) -> int:
    """Delete the temp files in `folders` (not their subfolders) whose writer process no longer runs
    on this machine, or that are older than `max_age_s` (a writer unknown, or on another machine
    sharing the folder); returns how many. Missing folders are fine.

    Temp files of live writers sharing a folder are left alone, so any process may call it at start.
    """
    removed = 0
    oldest_allowed = time.time() - max_age_s
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            if not _TEMP_NAME.match(entry.name):
                continue
            writer = _WRITER_PID.search(entry.name)
            writer_gone = writer is not None and not _process_runs(int(writer["pid"]))
            try:
                if writer_gone or entry.stat().st_mtime < oldest_allowed:
                    os.unlink(entry.path)
                    removed += 1
            except FileNotFoundError:
                continue  # its writer finished (or another cleaner was quicker)
    return removed


class _Draft:
    """A file being written: unnamed if the file system allows it, else under a hidden temp name."""

    def __init__(self, folder: Path, final_name: str, descriptor: int, temp_path: Path | None) -> None:
        self.folder = folder
        self.final_name = final_name
        self.descriptor = descriptor
        self.temp_path = temp_path  # None while the file has no name

    @classmethod
    def open(cls, folder: Path, final_name: str, mode: int) -> _Draft:
        if os.path.isdir(_OWN_DESCRIPTORS):
            try:
                descriptor = os.open(folder, os.O_TMPFILE | os.O_WRONLY, mode)
            except OSError as error:
                if error.errno not in _NO_UNNAMED_FILES or not folder.is_dir():
                    raise
            else:
                os.fchmod(descriptor, mode)  # exactly `mode`, whatever the umask
                return cls(folder, final_name, descriptor, None)
        temp_path = folder / _temp_name(final_name)
        descriptor = os.open(temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        os.fchmod(descriptor, mode)
        return cls(folder, final_name, descriptor, temp_path)

    @property
    def write_path(self) -> str:
        """A path that opens this very file, for writers that take a path."""
        if self.temp_path is not None:
            return str(self.temp_path)
        return f"{_OWN_DESCRIPTORS}/{self.descriptor}"

    def link_to(self, path: Path) -> None:
        """Give the file the name `path` (FileExistsError if taken)."""
        if self.temp_path is not None:
            os.link(self.temp_path, path)
            return
        # linkat(AT_SYMLINK_FOLLOW) on the descriptor's /proc entry names the unnamed file itself.
        # (`os.link` without a dir_fd calls link(2), which would try to link the /proc symlink.)
        own = os.open(_OWN_DESCRIPTORS, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.link(str(self.descriptor), path, src_dir_fd=own, follow_symlinks=True)
        finally:
            os.close(own)

    def named(self) -> Path:
        """The file under a hidden temp name beside its final name (named now if it had none)."""
        if self.temp_path is None:
            temp_path = self.folder / _temp_name(self.final_name)
            self.link_to(temp_path)
            self.temp_path = temp_path
        return self.temp_path

    def discard(self) -> None:
        """Close the file; a temp name still there (not renamed to its final name) is removed."""
        os.close(self.descriptor)
        if self.temp_path is not None:
            self.temp_path.unlink(missing_ok=True)


def _fill(draft: _Draft, content: Content) -> None:
    if callable(content):
        content(draft.write_path)
        return
    data = content.encode() if isinstance(content, str) else content
    view = memoryview(data)
    while view:
        view = view[os.write(draft.descriptor, view) :]


def final_name_of_temp(name: str) -> str | None:
    """The final name a temp file named by this module stands for (`.<final>.<pid>.<hex>.tmp`), or None
    when `name` is not such a temp name."""
    if _TEMP_NAME.match(name) is None or (writer := _WRITER_PID.search(name)) is None:
        return None
    return name[1 : writer.start()]


def _temp_name(final_name: str) -> str:
    # The pid tells the cleanup whether the writer still runs; the random part keeps threads apart.
    return f".{final_name}.{os.getpid()}.{secrets.token_hex(8)}{TEMP_SUFFIX}"


def _process_runs(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


def _fsync_folder(folder: Path) -> None:
    descriptor = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
