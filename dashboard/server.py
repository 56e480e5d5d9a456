"""The production WSGI server for the dashboard: gunicorn, `settings.dash_workers` processes with
`settings.dash_threads` threads each (gthread workers).

Each worker builds its own app after the fork (no preloading): its ProcessingService, in-memory caches
and file handles are its own, while the disk caches under `settings.cache_dir` (processed views and
background-callback results) are shared by all of them. Flask's development server is never used.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from gunicorn.app.base import BaseApplication

from pipeline.settings import Settings

log = logging.getLogger(__name__)

# glibc's mallopt parameter for the number of malloc arenas (malloc.h).
M_ARENA_MAX = -8
MALLOC_ARENAS = 2
# How often a worker hands the memory Arrow and glibc's malloc keep after frees back to the system
# (see freed_memory_release).
RELEASE_EVERY_S = 5.0


class DashboardServer(BaseApplication):
    """gunicorn configured from Settings, serving the WSGI app `app_factory()` builds in each worker."""

    def __init__(self, settings: Settings, app_factory: Callable[[], Any]) -> None:
        self.settings = settings
        self.app_factory = app_factory
        super().__init__()

    def load_config(self) -> None:
        settings = self.settings
        options = {
            "bind": f"{settings.dash_host}:{settings.dash_port}",
            "workers": settings.dash_workers,
            "threads": settings.dash_threads,
            "worker_class": "gthread",
            "timeout": settings.dash_timeout_s,
            "graceful_timeout": 5,
            "keepalive": 5,
            # One line per request would bury what operators need (restarts, errors).
            "accesslog": None,
            "errorlog": "-",
            "loglevel": "warning",
            "proc_name": "overwatch-dashboard",
            "post_request": freed_memory_release(RELEASE_EVERY_S),
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        return self.app_factory()


def wsgi_factory(settings: Settings) -> Callable[[], Any]:
    """Builds the dashboard's Flask server in a worker."""

    def build() -> Any:
        from dashboard.app import create_app

        app = create_app(settings)
        register_component_files(app)
        return app.server

    return build


def register_component_files(app: Any) -> None:
    """Let this worker serve every script and stylesheet of the page from its start.

    Dash registers the files it may serve on a worker's first request, after marking that set-up done:
    a gthread worker answering the browser's parallel script requests meanwhile refused them (404), and
    a cold page never loaded. Registering them here, before the worker takes requests, closes that gap.
    """
    app._generate_css_dist_html()
    app._generate_scripts_html()


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas for this process and the workers it forks; False where it cannot
    (not glibc) or where the operator chose with the MALLOC_ARENA_MAX environment variable.

    glibc gives each thread that allocates concurrently an arena of its own, up to 8 per core. A worker
    has ~20 threads (gunicorn's, snapshot readers, the cache writer, Arrow's and DuckDB's pools), and
    memory freed in one arena is kept for that arena's next use: in a control-room soak the worker held
    ~50 MB in 15+ arenas, with the cap ~20 MB in 2, while the Python objects it held stayed flat.
    """
    if "MALLOC_ARENA_MAX" in os.environ:
        return False
    mallopt = _libc_function("mallopt")
    if mallopt is None:
        return False
    return bool(mallopt(M_ARENA_MAX, arenas))


def trim_malloc() -> bool:
    """Hand the free pages inside glibc's heaps back to the system (`malloc_trim(0)`, every arena);
    False where there is no glibc."""
    trim = _libc_function("malloc_trim")
    return bool(trim(0)) if trim is not None else False


def _libc_function(name: str) -> Any:
    library = ctypes.util.find_library("c")
    try:
        return getattr(ctypes.CDLL(library), name) if library else None
    except (OSError, AttributeError):
        return None


def use_system_allocator_for_arrow() -> bool:
    """Make Arrow allocate through glibc's malloc in this process and the workers it forks (before
    they touch Arrow's pool); False where the operator chose with ARROW_DEFAULT_MEMORY_POOL.

    Arrow's default pool (mimalloc) keeps the pages of buffers freed by each thread in that thread's
    heap, and a release asked from another thread does not reach them: in a soaked worker its arena
    held ~150 MB while Arrow's buffers in use came to ~30 MB, and a test with four reader threads keeps
    ~95 of 120 MB after a release. glibc's heaps are shared by the threads (two arenas, see
    limit_malloc_arenas), so one trim gives it all back.
    """
    if "ARROW_DEFAULT_MEMORY_POOL" in os.environ:
        return False
    os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    return True


def release_freed_memory() -> None:
    """What Arrow's pool and glibc's malloc keep of memory already freed, given back to the system."""
    import pyarrow

    pool = pyarrow.default_memory_pool()
    if pool.backend_name != "system":  # the system pool's release is the malloc_trim below
        pool.release_unused()
    trim_malloc()


def freed_memory_release(
    every_s: float, release: Callable[[], None] | None = None, clock: Callable[[], float] = time.monotonic
) -> Callable[[Any, Any], None]:
    """A gunicorn post_request hook that returns memory the worker freed to the system, at most once
    every `every_s` (`release_freed_memory`, a few ms of CPU).

    Arrow allocates through mimalloc, which keeps the pages of freed buffers for reuse: in a soak of
    the control room, ~200 MB of a ~550 MB worker sat in mimalloc's arena while Arrow's buffers in use
    came to ~5 MB. A release right after reads gives nearly all of it back (tests: 320 MB to 4 MB).
    glibc's malloc gives back only the top of its heaps: after a burst of allocations (a run change,
    a bigger view) the free chunks below stay resident. Since Arrow allocates through glibc too
    (use_system_allocator_for_arrow), its freed buffers land there: `malloc_trim(0)` returns them (in
    a worker under tracemalloc, 97 of its 668 MB; ~4 ms a call once trimmed).
    """
    if release is None:
        release = release_freed_memory

    lock = threading.Lock()
    released_at = [-float("inf")]

    def post_request(worker: Any, request: Any) -> None:
        now = clock()
        with lock:
            if now - released_at[0] < every_s:
                return
            released_at[0] = now
        release()

    return post_request


def serve(settings: Settings) -> None:
    """Serve the dashboard until SIGINT/SIGTERM (gunicorn's master handles them and stops its workers)."""
    # Before gunicorn forks: the workers inherit the setting.
    if limit_malloc_arenas():
        log.info("malloc arenas limited to %d per process", MALLOC_ARENAS)
    if use_system_allocator_for_arrow():
        log.info("Arrow allocates through the system allocator (glibc malloc)")
    DashboardServer(settings, wsgi_factory(settings)).run()
