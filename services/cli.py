"""``python -m services.cli``: the admin and automation entry point.

Exit codes: 0 success, 1 a check or operation failed, 2 bad usage or bad input. Errors are one
line on stderr. Passwords are never taken from argv: ``--password-stdin`` reads one line from
standard input, otherwise an interactive prompt asks for it.
"""

from __future__ import annotations

import argparse
import getpass
import json
import logging
import sys
from collections.abc import Callable, Sequence
from datetime import date
from typing import NoReturn

from models.user import Role, UserCreate
from services import audit, demo, teams, users
from services.access import Actor
from services.config import get_settings
from services.db import Database, upgrade_schema
from services.errors import ConfigurationError, PortalError, ValidationError
from services.portal_home import cookie_key, prepare_home, prepare_runtime
from services.validation import parse

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad command-line usage: exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        prefix = "unrecognized arguments: "
        if message.startswith(prefix):
            # Never echo stray values: someone may have typed a password on the command line.
            words = message.removeprefix(prefix).split()
            options = [word.split("=")[0] for word in words if word.startswith("-")]
            message = (
                f"{prefix}{' '.join(options) or '(values not shown)'}; passwords are only "
                "read from standard input (--password-stdin)"
            )
        raise UsageError(f"{message} (see `{self.prog} --help`)")


def _database() -> Database:
    settings = get_settings()
    prepare_runtime(settings)
    db = Database(settings.resolved_database_url)
    db.ping()
    return db


def cmd_init(args: argparse.Namespace) -> int:
    settings = get_settings()
    home = prepare_home(settings)
    db = _database()
    before, after = upgrade_schema(db)
    state = "already up to date" if before == after else f"upgraded from {before or 'empty'}"
    print(f"Portal database {db.display_url}: schema at revision {after} ({state}).")
    if settings.cookie_key is None and settings.uses_embedded_database:
        cookie_key(settings)
        print(f"Login cookie key: kept in {home / 'cookie_key'} (mode 0600).")
    if not args.skip_mlflow:
        from services.tracking import ensure_tracking_store

        print(f"MLflow tracking store: {ensure_tracking_store(settings)} ready.")
    if users.needs_first_admin(db):
        print(
            "No administrator yet: open the portal, or run "
            "`python -m services.cli users add NAME --role admin`."
        )
    return EXIT_OK


def _read_password(args: argparse.Namespace) -> str:
    if args.password_stdin:
        line = sys.stdin.readline()
        if not line:
            raise UsageError("--password-stdin was given but standard input is empty")
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise UsageError(
            "no terminal to prompt for a password: pass it on stdin with --password-stdin"
        )
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat the password: "):
        raise UsageError("the two passwords do not match")
    return first


def cmd_users_add(args: argparse.Namespace) -> int:
    db = _database()
    first = users.needs_first_admin(db)
    roles = args.role or ([Role.ADMIN.value] if first else [])
    if not roles:
        raise UsageError("choose at least one --role")
    team_id = teams.find_team(db, args.team).id if args.team else None
    data = parse(
        UserCreate,
        {
            "username": args.username,
            "display_name": args.name or args.username,
            "email": args.email,
            "roles": roles,
            "team_id": team_id,
            "password": _read_password(args),
        },
    )
    if first and Role.ADMIN.value in data.roles:
        created = users.create_first_admin(db, data=data)
    else:
        created = users.create_user(db, actor=Actor.command_line(), data=data)
    print(f"Created user {created.username} ({', '.join(created.roles)}).")
    return EXIT_OK


def cmd_users_list(args: argparse.Namespace) -> int:
    people = users.list_users(_database(), actor=Actor.command_line())
    if args.json:
        print(json.dumps([p.model_dump(mode="json") for p in people], indent=2))
        return EXIT_OK
    print(f"{'USERNAME':<24} {'NAME':<24} {'ROLES':<34} {'TEAM':<16} STATUS")
    for p in people:
        status = "disabled" if p.disabled else ("locked" if p.locked_until else "active")
        print(
            f"{p.username:<24} {p.display_name[:24]:<24} {','.join(p.roles):<34} "
            f"{(p.team_name or '-')[:16]:<16} {status}"
        )
    return EXIT_OK


def _set_disabled(disabled: bool) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        db = _database()
        user = users.get_user(db, actor=Actor.command_line(), username=args.username)
        users.set_disabled(db, actor=Actor.command_line(), user_id=user.id, disabled=disabled)
        print(f"{'Disabled' if disabled else 'Enabled'} {user.username}.")
        return EXIT_OK

    return run


def cmd_users_unlock(args: argparse.Namespace) -> int:
    db = _database()
    user = users.get_user(db, actor=Actor.command_line(), username=args.username)
    users.unlock(db, actor=Actor.command_line(), user_id=user.id)
    print(f"Unlocked {user.username}.")
    return EXIT_OK


def cmd_demo_seed(args: argparse.Namespace) -> int:
    db = _database()
    created = demo.seed(db, usage=True)
    if not created.new_users:
        print("The demo organisation is already there; no new users were created.")
    else:
        print("Demo users (the passwords are shown only this once):")
        for username, roles, password in created.new_users:
            print(f"  {username:<16} {roles:<34} {password}")
    print(f"Teams: {', '.join(created.teams)}.")
    print(f"Catalog: {created.catalog}.")
    print(f"Fine-tuning: {created.jobs}.")
    print(f"Promotions: {created.promotions}.")
    print(f"Usage: {created.usage}.")
    from services.experiments.demo import seed_runs
    from services.tracking import ensure_tracking_store

    settings = get_settings()
    uri = ensure_tracking_store(settings)
    print(f"Experiments: {seed_runs(uri, settings.artifact_root)} in MLflow.")
    return EXIT_OK


def cmd_registry_sync(args: argparse.Namespace) -> int:
    from services.registry.sources.base import sources_for
    from services.registry.sync import sync_source

    db = _database()
    sources = sources_for(get_settings())
    chosen = [args.source] if args.source else list(sources)
    failed = False
    for name in chosen:
        result = sync_source(db, actor=Actor.command_line(), source=sources[name])
        print(result.describe(), file=sys.stderr if result.error else sys.stdout)
        # An unconfigured source fails only when it was asked for by name.
        asked = bool(args.source) or sources[name].unavailable_reason() is None
        failed = failed or (result.error is not None and asked)
    return EXIT_FAILED if failed else EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from services.training.daemon import serve

    logging.getLogger().setLevel(logging.INFO)
    return serve(
        _database(),
        get_settings(),
        once=args.once,
        exclusive=args.exclusive,
        parent_pid=args.parent_pid,
        slots=args.slots,
    )


def cmd_jobs_reconcile(args: argparse.Namespace) -> int:
    from services.training.cloud_status import refresh_active_cloud_jobs
    from services.training.worker import Worker

    db, settings = _database(), get_settings()
    for line in Worker(db, settings).reconcile():
        print(line)
    refreshed = refresh_active_cloud_jobs(db, settings)
    print(f"reconciled local jobs; refreshed {refreshed} cloud job(s)")
    return EXIT_OK


def cmd_promotions_sync(args: argparse.Namespace) -> int:
    from services import promotions

    db, settings = _database(), get_settings()
    expired = promotions.expire_due(db)
    errors = promotions.run_due(db, settings)
    for error in errors:
        print(error, file=sys.stderr)
    print(f"expired={expired} failed={len(errors)}")
    return EXIT_FAILED if errors else EXIT_OK


def cmd_usage_ingest(args: argparse.Namespace) -> int:
    from models.usage import UsageSource
    from services.gateway.ingest import ingest

    db = _database()
    result = ingest(
        db,
        get_settings(),
        actor=Actor.command_line(),
        location=args.location,
        source=UsageSource(args.format),
    )
    for rejection in result.rejections:
        print(rejection.describe(), file=sys.stderr)
    if result.rejected > len(result.rejections):
        print(f"… and {result.rejected - len(result.rejections)} more rejected", file=sys.stderr)
    _check_budget_alerts(db, say_when_off=False)  # the ingest succeeded whatever it says
    print(result.summary())
    return EXIT_OK


def cmd_usage_alerts(args: argparse.Namespace) -> int:
    return _check_budget_alerts(_database(), say_when_off=True)


def _check_budget_alerts(db: Database, *, say_when_off: bool) -> int:
    """Tell the budget webhook of newly crossed warning levels (on stderr: what was sent and
    what failed, which the next check tries again); exit 1 if a delivery failed."""
    from services.gateway.budget_alerts import check_alerts

    run = check_alerts(db, get_settings(), actor=Actor.command_line())
    for error in run.errors:
        print(error, file=sys.stderr)
    if run.configured or say_when_off:
        print(run.summary(), file=sys.stderr)
    return EXIT_FAILED if run.errors else EXIT_OK


def cmd_usage_report(args: argparse.Namespace) -> int:
    from services.gateway.export import report_text
    from services.gateway.scope import UsageQuery

    query = UsageQuery(
        start=_day(args.start, "--from"),
        end=_day(args.end, "--to"),
        group_by=tuple(d.strip() for d in args.group_by.split(",") if d.strip()),
    )
    print(report_text(_database(), actor=Actor.command_line(), query=query, fmt=args.format))
    return EXIT_OK


def cmd_usage_prune(args: argparse.Namespace) -> int:
    from services.gateway.budgets import today_in
    from services.gateway.retention import prune_events

    settings = get_settings()
    deleted = prune_events(
        _database(), actor=Actor.command_line(), keep_days=args.keep_days, today=today_in(settings)
    )
    print(f"pruned={deleted}")
    return EXIT_OK


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise UsageError(f"{option} must be a date as YYYY-MM-DD, not {value!r}") from None


def cmd_audit_verify(args: argparse.Namespace) -> int:
    report = audit.verify_chain(_database(), actor=Actor.command_line())
    print(report.describe(), file=sys.stdout if report.ok else sys.stderr)
    return EXIT_OK if report.ok else EXIT_FAILED


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m services.cli", description="AI Ops Portal administration.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    init = sub.add_parser("init", help="create or upgrade the portal database (idempotent)")
    init.add_argument("--skip-mlflow", action="store_true", help="do not prepare the MLflow store")
    init.set_defaults(run=cmd_init)

    users_cmd = sub.add_parser("users", help="manage portal users")
    users_sub = users_cmd.add_subparsers(dest="users_command", required=True, parser_class=_Parser)
    add = users_sub.add_parser("add", help="create a user (the first one becomes administrator)")
    add.add_argument("username")
    add.add_argument("--name", help="full name (default: the username)")
    add.add_argument("--email")
    add.add_argument("--team", help="team name")
    add.add_argument(
        "--role",
        action="append",
        choices=[r.value for r in Role],
        help="a role; repeat for several",
    )
    add.add_argument(
        "--password-stdin",
        action="store_true",
        help="read the password from the first line of standard input",
    )
    add.set_defaults(run=cmd_users_add)
    listing = users_sub.add_parser("list", help="list users")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=cmd_users_list)
    for name, run, text in (
        ("disable", _set_disabled(True), "disable a user"),
        ("enable", _set_disabled(False), "enable a disabled user"),
        ("unlock", cmd_users_unlock, "lift a lockout after failed logins"),
    ):
        command = users_sub.add_parser(name, help=text)
        command.add_argument("username")
        command.set_defaults(run=run)

    demo_cmd = sub.add_parser("demo", help="demo data")
    demo_sub = demo_cmd.add_subparsers(dest="demo_command", required=True, parser_class=_Parser)
    demo_sub.add_parser("seed", help="create a believable demo organisation").set_defaults(
        run=cmd_demo_seed
    )

    registry_cmd = sub.add_parser("registry", help="the AI registry")
    registry_sub = registry_cmd.add_subparsers(
        dest="registry_command", required=True, parser_class=_Parser
    )
    sync_cmd = registry_sub.add_parser("sync", help="sync models from Bedrock, SageMaker, MLflow")
    sync_cmd.add_argument(
        "--source",
        choices=["bedrock", "sagemaker", "mlflow"],
        help="only this source (default: every source)",
    )
    sync_cmd.set_defaults(run=cmd_registry_sync)

    worker = sub.add_parser("worker", help="run queued local training jobs")
    worker.add_argument("--once", action="store_true", help="run until the queue is empty")
    worker.add_argument(
        "--exclusive", action="store_true", help="exit if a worker already serves PORTAL_HOME"
    )
    worker.add_argument("--parent-pid", type=int, help="end when this process ends")
    worker.add_argument(
        "--slots", type=int, help="jobs to run at once (default: PORTAL_MAX_LOCAL_JOBS)"
    )
    worker.set_defaults(run=cmd_worker)

    jobs_cmd = sub.add_parser("jobs", help="fine-tuning jobs")
    jobs_sub = jobs_cmd.add_subparsers(dest="jobs_command", required=True, parser_class=_Parser)
    jobs_sub.add_parser(
        "reconcile", help="fail jobs whose process died; refresh cloud jobs"
    ).set_defaults(run=cmd_jobs_reconcile)

    promotions_cmd = sub.add_parser("promotions", help="promotion requests")
    promotions_sub = promotions_cmd.add_subparsers(
        dest="promotions_command", required=True, parser_class=_Parser
    )
    promotions_sub.add_parser(
        "sync",
        help="carry out due side effects of decisions (MLflow, SageMaker, webhook) and expire "
        "old requests; exit 1 if any side effect still fails",
    ).set_defaults(run=cmd_promotions_sync)

    usage_cmd = sub.add_parser("usage", help="LLM gateway usage and costs")
    usage_sub = usage_cmd.add_subparsers(dest="usage_command", required=True, parser_class=_Parser)
    ingest_cmd = usage_sub.add_parser(
        "ingest",
        help="load LiteLLM or Bedrock logs from a file, a folder or s3://bucket/prefix "
        "(idempotent: a request already stored is counted as a duplicate)",
    )
    ingest_cmd.add_argument("location", metavar="PATH_OR_S3_URI")
    ingest_cmd.add_argument("--format", required=True, choices=["litellm", "bedrock"])
    ingest_cmd.set_defaults(run=cmd_usage_ingest)
    usage_sub.add_parser(
        "alerts",
        help="tell the budget webhook (PORTAL_BUDGET_WEBHOOK_URL) of warning levels crossed "
        "since the last check; exit 1 if a delivery failed (usage ingest checks too)",
    ).set_defaults(run=cmd_usage_alerts)
    report_cmd = usage_sub.add_parser(
        "report", help="usage and cost from the daily rollups, grouped, as CSV or JSON"
    )
    report_cmd.add_argument("--from", dest="start", required=True, metavar="YYYY-MM-DD")
    report_cmd.add_argument("--to", dest="end", required=True, metavar="YYYY-MM-DD")
    report_cmd.add_argument(
        "--group-by",
        default="team",
        metavar="DIMS",
        help="comma-separated: day, team, model, user, key, provider, tag (default: team)",
    )
    report_cmd.add_argument("--format", choices=["csv", "json"], default="csv")
    report_cmd.set_defaults(run=cmd_usage_report)
    prune_cmd = usage_sub.add_parser(
        "prune", help="delete raw usage events older than N days (rollups are kept)"
    )
    prune_cmd.add_argument("--keep-days", type=int, required=True, metavar="N")
    prune_cmd.set_defaults(run=cmd_usage_prune)

    audit_cmd = sub.add_parser("audit", help="the audit log")
    audit_sub = audit_cmd.add_subparsers(dest="audit_command", required=True, parser_class=_Parser)
    audit_sub.add_parser("verify", help="check the hash chain; exit 1 if broken").set_defaults(
        run=cmd_audit_verify
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # Errors reach the user as one line on stderr; library chatter would only bury it.
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    try:
        args = build_parser().parse_args(argv)
        return int(args.run(args))
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ValidationError, ConfigurationError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except PortalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
