"""Operator command line: `python -m pipeline {receiver,emulator,export} ...`.

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
    emulator.add_argument("--replay", type=Path, default=None, help="serve the objects of this ROOT file")

    export = commands.add_parser("export", help="write the newest snapshot of a run as a ROOT file")
    export.add_argument("--data-dir", type=Path, default=settings.data_dir)
    export.add_argument("--run", type=int, required=True)
    export.add_argument("--subsystem", required=True)
    export.add_argument("--out", type=Path, default=None, help="default: the original receiver's file name")
    users_cli.add_parser(commands)
    return parser


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
    return run_emulator_cli(args.bind, subsystems, args.replay, settings)


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


def main(argv: list[str] | None = None) -> int:
    settings = Settings.from_env()
    args = build_parser(settings).parse_args(argv)
    logging.basicConfig(level=args.log_level, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    if args.command == "receiver":
        return run_receiver(args)
    if args.command == "emulator":
        return run_emulator(args, settings)
    if args.command == "users":
        return users_cli.run(args, settings.users_file)
    return run_export(args)


if __name__ == "__main__":
    sys.exit(main())
