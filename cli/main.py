"""The ``hubbub`` command."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from cli.runtime import load_settings, with_running_system
from cli.supervisor import MAX_NATS_NODES, worker_count
from hubbub.config import ConfigError, Settings
from hubbub.logs import setup_logging


def _use_uvloop() -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - not on Windows
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def _run(coro: Coroutine[Any, Any, int | None]) -> int:
    _use_uvloop()
    return asyncio.run(coro) or 0


def cmd_up(args: argparse.Namespace, settings: Settings) -> int:
    from cli.supervisor import Supervisor

    return Supervisor(
        settings,
        hubs=args.hubs,
        workers=args.workers if args.workers is not None else settings.workers,
        port=args.port,
        frontend=not args.no_frontend,
        nats_nodes=args.nats_nodes,
    ).run()


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    from hub.main import serve_hub

    _use_uvloop()
    serve_hub(settings, port=args.port)
    return 0


def cmd_worker(args: argparse.Namespace, settings: Settings) -> int:
    from workers.app import serve_worker

    return _run(serve_worker(settings))


def cmd_openapi(args: argparse.Namespace, settings: Settings) -> int:
    """Print (or write) the OpenAPI document the hub serves, without running anything:
    the frontend's generated types come from it, and CI fails when they drift."""

    import orjson

    from hub.app import create_app
    from hub.openapi import DOCUMENTED_ROUTES, build_document
    from hub.state import CATALOG

    # The app is built, never started: the URLs and the secret only satisfy the factory's
    # checks (no secret is made for it: see OFFLINE).
    offline = settings.model_copy(
        update={
            "nats_url": "nats://unused:4222",
            "redis_url": "redis://unused:6379/0",
            "secret_key": "unused, never signs anything: " + "x" * 32,
        }
    )
    app = create_app(offline)
    document = build_document(app[CATALOG], app.get(DOCUMENTED_ROUTES, []))
    text = orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n"
    return _emit(text, args.output)


def _emit(text: bytes, output: str | None) -> int:
    """Write a generated document to ``output``, or to stdout without one."""
    from pathlib import Path

    if output:
        try:
            Path(output).write_bytes(text)
        except OSError as exc:
            print(f"hubbub: cannot write {output}: {exc.strerror}", file=sys.stderr)
            return 1
    else:
        sys.stdout.buffer.write(text)
    return 0


def cmd_asyncapi(args: argparse.Namespace, settings: Settings) -> int:
    """Print (or write) the AsyncAPI document of the WebSocket protocol and the events, as
    the hub serves it: the frontend's push and event types come from it."""

    import orjson

    from hubbub.contracts.api import default_catalog
    from hubbub.contracts.asyncapi import build_document

    text = orjson.dumps(build_document(default_catalog()), option=orjson.OPT_INDENT_2) + b"\n"
    return _emit(text, args.output)


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    from cli.admin.system import migrate

    return _run(migrate(settings, revision=args.revision, down=args.down))


def cmd_check(args: argparse.Namespace, settings: Settings) -> int:
    from cli.admin.system import check

    return _run(check(settings))


def cmd_user(args: argparse.Namespace, settings: Settings) -> int:
    from cli.admin.accounts import create_user

    password = None
    if args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    return _run(
        create_user(
            settings, args.email, admin=args.admin, password=password, display_name=args.name
        )
    )


def cmd_mail(args: argparse.Namespace, settings: Settings) -> int:
    from cli.admin.accounts import show_mail

    return _run(show_mail(settings, limit=args.limit))


def _grant(args: argparse.Namespace) -> dict[str, Any]:
    """The name and channels of an ``apikey`` or ``service`` action (see ``_add_grants``)."""
    return {"name": getattr(args, "name", None), "channels": getattr(args, "channel", None)}


def cmd_apikey(args: argparse.Namespace, settings: Settings) -> int:
    from cli.admin.apikeys import manage_keys

    return _run(manage_keys(settings, args.action, **_grant(args)))


def cmd_service(args: argparse.Namespace, settings: Settings) -> int:
    from cli.admin.services import manage_services

    return manage_services(settings, args.action, **_grant(args))


def cmd_nats_auth(args: argparse.Namespace, settings: Settings) -> int:
    from cli.admin.services import prepare_nats_auth

    return prepare_nats_auth(settings, args.role_dir)


# The NATS user of each command that connects to NATS, against the embedded NATS of a
# running `hubbub up` (docs/architecture.md, "Who may do what on NATS"): a hub as the hub
# (its reply inbox and its narrower rights); the streams (migrate), account info (check)
# and the API-key revocations on ctl.> (apikey) need the worker's.
NATS_ROLES = {
    "serve": "hub",
    "worker": "worker",
    "migrate": "worker",
    "check": "worker",
    "apikey": "worker",
}

# The commands that build a document from the code: no services, no secret, no state.
OFFLINE = ("openapi", "asyncapi")

COMMANDS: dict[str, Callable[[argparse.Namespace, Settings], int]] = {
    "up": cmd_up,
    "serve": cmd_serve,
    "worker": cmd_worker,
    "migrate": cmd_migrate,
    "check": cmd_check,
    "openapi": cmd_openapi,
    "asyncapi": cmd_asyncapi,
    "user": cmd_user,
    "mail": cmd_mail,
    "apikey": cmd_apikey,
    "service": cmd_service,
    "nats-auth": cmd_nats_auth,
}


def port_number(value: str) -> int:
    """``--port``: a port number, 1 to 65535."""
    port = int(value) if value.isdigit() else 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"--port takes a port number, 1 to 65535, not {value!r}")
    return port


def at_least_one(option: str) -> Callable[[str], int]:
    """A count option's type: a number of at least 1."""

    def count(value: str) -> int:
        number = int(value) if value.isdigit() else 0
        if number < 1:
            raise argparse.ArgumentTypeError(
                f"{option} takes a number of at least 1, not {value!r}"
            )
        return number

    return count


def nats_nodes(value: str) -> int:
    """``hubbub up --nats-nodes``: 1 (one server) to ``MAX_NATS_NODES``."""
    number = int(value) if value.isdigit() else 0
    if not 1 <= number <= MAX_NATS_NODES:
        raise argparse.ArgumentTypeError(f"--nats-nodes takes 1 to {MAX_NATS_NODES}, not {value!r}")
    return number


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hubbub", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run the whole system: embedded servers, hub(s), workers")
    up.add_argument(
        "--workers",
        type=worker_count,
        default=None,
        help="worker processes: a number, or auto (one per CPU); default 1",
    )
    up.add_argument(
        "--hubs",
        type=at_least_one("--hubs"),
        default=1,
        help="hub processes, on consecutive ports (free ones instead when those are taken "
        "and --port is not given)",
    )
    up.add_argument("--port", type=port_number, default=None, help="first hub port (default 8080)")
    up.add_argument("--no-frontend", action="store_true", help="serve the API only")
    up.add_argument(
        "--nats-nodes",
        type=nats_nodes,
        default=1,
        metavar="N",
        help="embedded NATS servers, as a cluster when N > 1 (default 1; 3 survives one down)",
    )

    serve = sub.add_parser("serve", help="run one hub process (needs NATS_URL and REDIS_URL)")
    serve.add_argument("--port", type=port_number, default=None, help="default HUBBUB_PORT")

    sub.add_parser("worker", help="run one worker process (needs all three URLs)")

    migrate = sub.add_parser("migrate", help="apply database migrations (idempotent)")
    migrate.add_argument(
        "--revision", default=None, help="target revision (default head; needed with --down)"
    )
    migrate.add_argument(
        "--down", action="store_true", help="downgrade to --revision (base: all the way)"
    )

    sub.add_parser("check", help="check that PostgreSQL, NATS and Redis are reachable")

    openapi = sub.add_parser("openapi", help="print the OpenAPI document (no server needed)")
    openapi.add_argument("--output", default=None, help="write it to this file instead")
    asyncapi = sub.add_parser(
        "asyncapi", help="print the AsyncAPI document (WebSocket protocol and events)"
    )
    asyncapi.add_argument("--output", default=None, help="write it to this file instead")

    user = sub.add_parser("user", help="manage accounts in the database")
    user_sub = user.add_subparsers(dest="user_command", required=True, metavar="ACTION")
    create = user_sub.add_parser(
        "create", help="create an account (prints a generated password unless given one)"
    )
    create.add_argument("email")
    create.add_argument(
        "--admin", action="store_true", help="with the admin role (promotes an existing account)"
    )
    create.add_argument("--name", default=None, help="display name (default: the email's user)")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )

    mail = sub.add_parser("mail", help="show the latest mail of the dev mail catcher")
    mail.add_argument(
        "--limit", type=at_least_one("--limit"), default=10, help="how many messages (default 10)"
    )

    _add_grants(
        sub.add_parser("apikey", help="service API keys for the publish API"),
        create="make a key (printed once)",
        name="who uses it, e.g. billing-service",
        list_="every key, active or revoked",
        revoke="stop a key from working",
    )
    _add_grants(
        sub.add_parser("service", help="NATS credentials for backend services"),
        create="make a service's NATS user (prints it)",
        name="the service, e.g. news (its NATS user: svc-news)",
        list_="every service and its channels",
        revoke="remove a service's NATS user",
    )

    nats_auth = sub.add_parser(
        "nats-auth", help="generate the NATS credentials and server config (once; compose)"
    )
    nats_auth.add_argument(
        "--role-dir",
        action="append",
        default=[],
        metavar="ROLE=FOLDER",
        help="copy ROLE's password (hub, worker) alone into FOLDER (repeatable)",
    )
    return parser


def _add_grants(
    parser: argparse.ArgumentParser, *, create: str, name: str, list_: str, revoke: str
) -> None:
    """The actions of a credential that may publish to some channels (``apikey`` and
    ``service``): ``create NAME --channel PATTERN…``, ``list``, ``revoke NAME``."""
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    made = actions.add_parser("create", help=create)
    made.add_argument("name", help=name)
    made.add_argument(
        "--channel",
        action="append",
        required=True,
        metavar="PATTERN",
        help="where it may publish: public:* or ticker:prices (repeatable)",
    )
    actions.add_parser("list", help=list_)
    actions.add_parser("revoke", help=revoke).add_argument("name")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line, refused with argparse's usage error (exit 2) when it asks for
    something that cannot be done."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "migrate":
        if args.down and args.revision is None:
            # Down to the default, head, would be nothing at all.
            parser.error("--down needs --revision: the revision to go down to (base: all)")
        args.revision = args.revision or "head"
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        # A command that only builds a document makes no secret (.hubbub/secret_key).
        settings = Settings() if args.command in OFFLINE else load_settings()
        if args.command not in ("up", *OFFLINE):
            settings = with_running_system(settings, NATS_ROLES.get(args.command))
    except ConfigError as exc:
        print(f"hubbub: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # pydantic's ValidationError: name the setting
        print(f"hubbub: invalid settings: {exc}", file=sys.stderr)
        return 2
    setup_logging(
        f"{args.command}:{os.getpid()}" if args.command in ("serve", "worker") else args.command,
        settings.log_level,
        settings.log_format if args.command in ("serve", "worker") else "text",
    )
    try:
        return COMMANDS[args.command](args, settings)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from cli.failures import explain

        failure = explain(exc, database_url=settings.database_url, nats_url=settings.nats_url)
        if failure is None:
            raise
        print(f"hubbub: {failure.message}", file=sys.stderr)
        return failure.code


if __name__ == "__main__":
    sys.exit(main())
