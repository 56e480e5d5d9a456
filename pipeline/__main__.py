"""Operator command line: `python -m pipeline {receiver,emulator,export,import-archive,qc} ...`.

In production one receiver runs per subsystem, on hosts near the HLT; each form here is one process.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

from pipeline.auth import cli as users_cli
from pipeline.settings import Settings

log = logging.getLogger("pipeline")


def _positive(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def build_parser(settings: Settings) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__)
    parser.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    commands = parser.add_subparsers(dest="command", required=True)

    receiver = commands.add_parser("receiver", help="request objects from one HLT merger and store them")
    receiver.add_argument("--endpoint", required=True, help="merger REP socket, e.g. tcp://127.0.0.1:60321")
    receiver.add_argument("--subsystem", required=True, help="EMC, TPC, HLT, ...")
    receiver.add_argument("--data-dir", type=Path, default=settings.data_dir)
    receiver.add_argument("--select", default=None, help="unanchored regex on object names")
    receiver.add_argument("--period", type=_positive, default=settings.receiver_period_s, help="seconds")
    receiver.add_argument("--timeout", type=_positive, default=settings.receiver_timeout_s, help="seconds")
    receiver.add_argument("--reset", action="store_true", help="ask the merger to reset after each reply")
    receiver.add_argument(
        "--once", action="store_true", help="one request; exit 0 only if a snapshot was stored"
    )

    emulator = commands.add_parser("emulator", help="serve synthetic (or replayed) HLT merger objects")
    emulator.add_argument("--bind", default=settings.emulator_endpoint)
    emulator.add_argument("--subsystems", default=",".join(settings.subsystems))
    replay = emulator.add_mutually_exclusive_group()
    replay.add_argument("--replay", type=Path, default=None, help="serve the objects of this ROOT file")
    replay.add_argument(
        "--replay-run", type=Path, default=None, metavar="DATA_DIR", help="serve a stored run as if live"
    )
    emulator.add_argument("--run", type=int, default=None, help="the run to replay (with --replay-run)")
    emulator.add_argument(
        "--speed", type=_positive, default=1.0, help="replay this many times faster than real time"
    )
    emulator.add_argument(
        "--faults",
        default=settings.emulator_faults,
        help="'demo' (one fault per run), 'none', or e.g. 'hot_fastor:id=1000:at=2;low_rate:factor=0.2:at=5'",
    )

    export = commands.add_parser("export", help="write the newest snapshot of a run as a ROOT file")
    export.add_argument("--data-dir", type=Path, default=settings.data_dir)
    export.add_argument("--run", type=int, required=True)
    export.add_argument("--subsystem", required=True)
    export.add_argument("--out", type=Path, default=None, help="default: the original receiver's file name")

    archive = commands.add_parser(
        "import-archive", help="import the original OVERWATCH receiver files (a folder tree) on Dask"
    )
    archive.add_argument("source", type=Path, help="folder holding the receiver files (any depth)")
    archive.add_argument("--data-dir", type=Path, default=settings.data_dir)
    _add_engine_arguments(archive)
    archive.add_argument(
        "--no-qc", action="store_true", help="do not check and trend the imported runs afterwards"
    )

    users_cli.add_parser(commands)
    qc = commands.add_parser("qc", help="check every stored snapshot as it lands (or rebuild the results)")
    qc.add_argument("--data-dir", type=Path, default=settings.data_dir)
    qc.add_argument("--subsystems", default="", help="comma-separated; default: every subsystem stored")
    qc.add_argument("--poll", type=_positive, default=settings.qc_poll_s, help="seconds between looks")
    qc.add_argument("--rebuild", action="store_true", help="recompute stored results, then exit")
    qc.add_argument("--run", type=int, default=None, help="with --rebuild: only this run")
    qc.add_argument("--no-progress", action="store_true", help="with --rebuild: no progress bar")
    _add_engine_arguments(qc, "with --rebuild of more than one run: ")
    return parser


def _add_engine_arguments(command: argparse.ArgumentParser, when: str = "") -> None:
    """Where batch work runs (`pipeline.engine`): the archive import and the QC rebuild."""
    engine = command.add_mutually_exclusive_group()
    engine.add_argument(
        "--workers",
        type=int,
        default=1,
        help=f"{when}local Dask cluster of N processes (0: no Dask, one process)",
    )
    engine.add_argument(
        "--scheduler", default=None, help=f"{when}an existing Dask scheduler, tcp://HOST:PORT"
    )


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    return stop


def run_receiver(args: argparse.Namespace) -> int:
    from pipeline.receiver import Outcome, Receiver

    try:
        receiver = Receiver(
            endpoint=args.endpoint,
            subsystem=args.subsystem,
            data_dir=args.data_dir,
            select=args.select,
            period_s=args.period,
            timeout_s=args.timeout,
            reset=args.reset,
        )
    except ValueError as error:
        log.error("%s", error)
        return 2
    if args.once:
        try:
            outcome = receiver.request_once()
        finally:
            receiver.close()
        log.info("%s: %s", args.subsystem, outcome.value)
        return 0 if outcome is Outcome.STORED else 1
    log.info(
        "%s receiver: %s every %g s (timeout %g s)", args.subsystem, args.endpoint, args.period, args.timeout
    )
    receiver.run(_stop_on_signals())
    return 0


def run_emulator(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.emulator.merger import run_emulator_cli

    subsystems = [s.strip() for s in args.subsystems.split(",") if s.strip()]
    if (args.replay_run is None) != (args.run is None):
        log.error("--replay-run and --run go together")
        return 2
    stored_run = None if args.replay_run is None else (args.replay_run, args.run, args.speed)
    return run_emulator_cli(
        args.bind,
        subsystems,
        args.replay,
        settings.with_overrides(emulator_faults=args.faults),
        stored_run=stored_run,
    )


def run_export(args: argparse.Namespace) -> int:
    from pipeline.export import export_snapshot_root
    from pipeline.store import SnapshotStore

    try:
        path = export_snapshot_root(SnapshotStore(args.data_dir), args.run, args.subsystem, args.out)
    except (KeyError, LookupError, ValueError) as error:
        log.error("%s", error.args[0] if error.args else error)
        return 1
    print(path)
    return 0


def run_import_archive(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.archive.driver import import_archive
    from pipeline.qc.alarms import AlarmConfigError
    from pipeline.qc.delivery import DeliveryConfigError

    if not args.source.is_dir():
        log.error("%s is not a folder", args.source)
        return 2
    try:
        summary = import_archive(
            args.source,
            args.data_dir,
            workers=args.workers,
            scheduler=args.scheduler,
            progress=sys.stderr,
            qc_settings=None if args.no_qc else settings,
        )
    except (AlarmConfigError, DeliveryConfigError) as error:
        log.error("%s", error)
        return 2
    print(summary.text())
    return 1 if summary.failed or (summary.qc is not None and summary.qc.failed) else 0


def run_qc(args: argparse.Namespace, settings: Settings) -> int:
    from pipeline.engine import cluster
    from pipeline.qc.alarms import AlarmConfigError
    from pipeline.qc.delivery import DeliveryConfigError
    from pipeline.qc.rebuild import rebuild_qc
    from pipeline.qc.service import QCService
    from pipeline.qc.steps import trend_and_alarm_steps

    subsystems = [s.strip() for s in args.subsystems.split(",") if s.strip()] or None
    try:
        consumers, deliverer = trend_and_alarm_steps(args.data_dir, settings, deliver=not args.rebuild)
    except (AlarmConfigError, DeliveryConfigError) as error:
        log.error("%s", error)
        return 2
    if args.rebuild:
        # One run needs no cluster: it is rebuilt in this process, as the live service checks it.
        workers = 0 if args.run is not None else args.workers
        with cluster(workers, args.scheduler) as client:
            summary = rebuild_qc(
                args.data_dir,
                settings,
                run=args.run,
                subsystems=subsystems,
                client=client,
                show_progress=not args.no_progress,
            )
        print(summary.text())  # the closing summary, as the archive import prints its own
        return 0 if summary.failed == 0 else 1
    if args.run is not None:
        log.error("--run needs --rebuild")
        return 2
    service = QCService(args.data_dir, subsystems=subsystems, consumers=consumers)
    log.info("QC service on %s (every %g s)", args.data_dir, args.poll)
    if deliverer is not None:
        deliverer.start()
    try:
        service.run_forever(_stop_on_signals(), poll_s=args.poll)
    finally:
        if deliverer is not None:
            deliverer.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    args = build_parser(settings).parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.command == "receiver":
        return run_receiver(args)
    if args.command == "emulator":
        return run_emulator(args, settings)
    if args.command == "import-archive":
        return run_import_archive(args, settings)
    if args.command == "users":
        return users_cli.run(args, settings.users_file)
    if args.command == "qc":
        return run_qc(args, settings)
    return run_export(args)


if __name__ == "__main__":
    sys.exit(main())
