"""The ``vigil`` command: one entry point for the server, the workers and the scripts.

``vigil COMMAND ...`` runs the management command of that name (``vigil check`` runs
``vigil_check`` so that Django's own ``check`` stays reachable through ``vigil manage``).
Failures print one line, ``vigil: error: <reason>``, and exit non-zero; set
``VIGIL_DEBUG=1`` for the full traceback.
"""

from __future__ import annotations

import os
import sys
import traceback

# User-facing name -> (management command, one-line help). Order is the help's order.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init", "create or migrate the database; --demo seeds the demo school"),
    "demo": ("demo", "seed the demo school and run everything (web, simulated cameras, recorders)"),
    "serve": ("serve", "run the web application"),
    "record": ("record", "record every in-service camera of a recorder"),
    "simulate": ("simulate", "serve simulated cameras over RTSP from real footage"),
    "status": ("status", "camera and recorder health"),
    "check": ("vigil_check", "prove catalog rows and files on disk agree (--repair fixes)"),
    "storage": ("storage", "capacity plan: projected retention per camera and recorder"),
    "retention": ("retention", "retention sweep and coverage reports"),
    "analyze": ("analyze", "motion, tamper and image-quality analysis of the sub-streams"),
    "alerts": ("alerts", "escalate and deliver alerts (dispatch --loop), list them"),
    "verify": ("verify", "verify a signed evidence package (.zip or directory)"),
    "export-worker": ("export_worker", "run footage extraction jobs into evidence packages"),
    "inventory": ("inventory", "import or export the inventory (CSV, YAML)"),
    "camera": ("camera", "add and list cameras"),
    "user": ("user", "add, list and reset user accounts"),
    "audit": ("audit", "verify the audit chain"),
    "permissions": ("permissions", "print the permission matrix"),
    "demo-otp": ("demo_otp", "print a demo user's current two-factor code (demo only)"),
    "manage": ("", "run any Django management command (migrate, shell, ...)"),
}


# Commands that run before the database exists (or do not use it).
NO_DATABASE_NEEDED = {
    "init",
    "demo",
    "permissions",
    "help",
    "migrate",
    "showmigrations",
    "simulate",
    # a recipient checks a package on their own computer, with no school database
    "verify",
}


def _database_ready() -> bool:
    from django.db import connection
    from django.db.migrations.executor import MigrationExecutor
    from django.db.utils import Error as DatabaseError

    try:
        executor = MigrationExecutor(connection)
        return not executor.migration_plan(executor.loader.graph.leaf_nodes())
    except DatabaseError:
        return False


def _usage() -> str:
    lines = ["usage: vigil COMMAND [options]   (vigil COMMAND --help for details)", "", "commands:"]
    from django.core.management import get_commands

    available = get_commands()
    for name, (target, text) in COMMANDS.items():
        if target and target not in available:
            continue
        lines.append(f"  {name:<12} {text}")
    lines += [
        "",
        "All state lives in $VIGIL_DATA_DIR (default /var/lib/vigil as root,",
        "~/.local/share/vigil otherwise); settings in $VIGIL_DATA_DIR/vigil.toml.",
    ]
    return "\n".join(lines)


def _fail(message: str, code: int = 1) -> int:
    first_line = (message.strip().splitlines() or ["unknown error"])[0]
    print(f"vigil: error: {first_line}", file=sys.stderr)
    return code


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "vigil.settings")
    debug = os.environ.get("VIGIL_DEBUG") == "1"
    try:
        import django

        django.setup()
    except Exception as exc:  # configuration errors must read as one clear line
        if debug:
            traceback.print_exc()
        return _fail(str(exc), 2)

    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if args[0] in ("-V", "--version"):
        from vigil import __version__

        print(f"vigil {__version__}")
        return 0

    from django.core.management import (
        BaseCommand,
        execute_from_command_line,
        get_commands,
        load_command_class,
    )

    name, rest = args[0], args[1:]
    if name == "manage":
        target, rest = (rest[0], rest[1:]) if rest else ("help", [])
    elif name in COMMANDS:
        target = COMMANDS[name][0]
    else:
        return _fail(f"unknown command '{name}' (see 'vigil --help')", 2)
    if target not in get_commands() and target != "help":
        return _fail(f"command '{name}' is not available in this installation", 2)
    wants_help = "-h" in rest or "--help" in rest
    if target not in NO_DATABASE_NEEDED and not wants_help and not _database_ready():
        from django.conf import settings

        return _fail(
            f"the database in {settings.PATHS.root} is not initialised or not up to date: "
            "run 'vigil init' first",
            2,
        )
    try:
        if name == "manage":
            execute_from_command_line(["vigil", target, *rest])
        else:
            # run under its public name, so that --help and errors say `vigil check`,
            # not the management command behind it (`vigil vigil_check`)
            app = get_commands()[target]
            command = app if isinstance(app, BaseCommand) else load_command_class(app, target)
            command.run_from_argv(["vigil", name, *rest])
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return code
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        if debug:
            traceback.print_exc()
        return _fail(f"{type(exc).__name__}: {exc}" if not str(exc) else str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
