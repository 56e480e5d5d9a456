"""`python -m pipeline users add|passwd|remove|list`: manage the users file without the web server.

The password is asked twice on a terminal (never echoed) or read as the first line of standard input
when it is not a terminal (`printf 'secret\n' | python -m pipeline users add alice --role expert`); it is
never a command-line argument, which other users of the machine could read.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from pipeline.auth.roles import USER_ROLES, Role
from pipeline.auth.users import UsersFile, UsersFileError


def add_parser(commands: argparse._SubParsersAction) -> None:
    users = commands.add_parser("users", help="manage dashboard users (argon2 hashes in the users file)")
    users.add_argument("--file", type=Path, default=None, help="users file (default: settings.users_file)")
    actions = users.add_subparsers(dest="action", required=True)
    add = actions.add_parser("add", help="add a user (password from a prompt or stdin)")
    add.add_argument("name")
    add.add_argument("--role", required=True, choices=[role.label for role in USER_ROLES])
    passwd = actions.add_parser("passwd", help="set a user's password (from a prompt or stdin)")
    passwd.add_argument("name")
    role = actions.add_parser("role", help="change a user's role")
    role.add_argument("name")
    role.add_argument("role", choices=[role.label for role in USER_ROLES])
    remove = actions.add_parser("remove", help="remove a user")
    remove.add_argument("name")
    actions.add_parser("list", help="list users and roles")


def run(args: argparse.Namespace, default_file: Path) -> int:
    users = UsersFile(args.file or default_file)
    try:
        if args.action == "list":
            for record in sorted(users.users().values(), key=lambda r: r.name):
                print(f"{record.name}\t{record.role.label}")
            return 0
        if args.action == "add":
            if users.get(args.name) is not None:
                raise UsersFileError(f"user {args.name!r} exists: use `users passwd` or `users role`")
            users.set_user(args.name, Role.parse(args.role), read_password())
        elif args.action == "passwd":
            if users.get(args.name) is None:
                raise UsersFileError(f"no user {args.name!r}")
            users.set_user(args.name, password=read_password())
        elif args.action == "role":
            users.set_user(args.name, role=Role.parse(args.role))
        elif args.action == "remove":
            users.remove(args.name)
    except (UsersFileError, ValueError) as error:
        print(f"users: {error}", file=sys.stderr)
        return 2
    print(f"users: {args.action} {args.name}: done ({users.path})")
    return 0


def read_password() -> str:
    if not sys.stdin.isatty():
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise UsersFileError("no password on standard input")
        return password
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Again: "):
        raise UsersFileError("the two passwords differ")
    return first
