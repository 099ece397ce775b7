"""``python -m services.cli`` as an operator uses it: exit codes, one-line errors, passwords on
stdin only. In-process on SQLite and PostgreSQL, plus real subprocesses for stdin and argv."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import text

from models.team import TeamCreate
from services import teams
from services.access import Actor
from services.cli import main
from services.config import get_settings
from services.db import Database
from tests.conftest import PASSWORD
from tests.unit.gateway.support import litellm, write_lines
from tests.webhook_receiver import serve_receiver

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def cli_db(db_url: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the CLI at the test database (SQLite or PostgreSQL)."""
    monkeypatch.setenv("PORTAL_DATABASE_URL", db_url)
    monkeypatch.setenv("PORTAL_COOKIE_KEY", "k" * 40)
    get_settings.cache_clear()
    return db_url


def run(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *argv: str, stdin: str = ""
) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_init_is_idempotent(cli_db: str, monkeypatch, capsys) -> None:
    code, out, _ = run(monkeypatch, capsys, "init", "--skip-mlflow")
    assert code == 0 and "upgraded from empty" in out and "No administrator yet" in out
    code, out, _ = run(monkeypatch, capsys, "init", "--skip-mlflow")
    assert code == 0 and "already up to date" in out


def test_users_add_list_disable_and_audit(cli_db: str, monkeypatch, capsys) -> None:
    run(monkeypatch, capsys, "init", "--skip-mlflow")
    code, out, _ = run(
        monkeypatch, capsys, "users", "add", "Root", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert code == 0 and "Created user root (admin)" in out  # the first user becomes admin
    code, out, _ = run(
        monkeypatch,
        capsys,
        "users",
        "add",
        "dana",
        "--role",
        "data_scientist",
        "--role",
        "approver",
        "--name",
        "Dana W",
        "--password-stdin",
        stdin=PASSWORD + "\n",
    )
    assert code == 0
    code, out, _ = run(monkeypatch, capsys, "users", "list")
    assert "dana" in out and "data_scientist,approver" in out and PASSWORD not in out
    assert run(monkeypatch, capsys, "users", "disable", "dana")[0] == 0
    code, out, _ = run(monkeypatch, capsys, "users", "list", "--json")
    assert '"disabled": true' in out and "password" not in out
    code, out, _ = run(monkeypatch, capsys, "audit", "verify")
    assert code == 0 and "verified: 3 events" in out


@pytest.mark.parametrize(
    ("argv", "stdin", "code", "message"),
    [
        (
            ["users", "add", "x y", "--role", "admin", "--password-stdin"],
            PASSWORD,
            2,
            "Username: must be",
        ),
        (["users", "add", "bob", "--role", "admin", "--password-stdin"], "short", 2, "at least 12"),
        (
            ["users", "add", "bob", "--role", "wizard", "--password-stdin"],
            PASSWORD,
            2,
            "invalid choice",
        ),
        (
            ["users", "add", "bob", "--role", "admin", "--password-stdin"],
            "",
            2,
            "standard input is empty",
        ),
        (["users", "add", "bob", "--role", "admin", "--password", PASSWORD], "", 2, "unrecognized"),
        (["users", "disable", "ghost"], "", 1, "No user named 'ghost'"),
        (["users"], "", 2, "required"),
        (["frobnicate"], "", 2, "invalid choice"),
    ],
)
def test_bad_usage_gets_one_line_and_the_right_exit_code(
    cli_db: str, monkeypatch, capsys, argv: list[str], stdin: str, code: int, message: str
) -> None:
    run(monkeypatch, capsys, "init", "--skip-mlflow")
    got, out, err = run(monkeypatch, capsys, *argv, stdin=stdin)
    assert got == code and message in err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ")
    assert PASSWORD not in err + out


def test_duplicate_user_fails_without_a_second_row(cli_db: str, monkeypatch, capsys) -> None:
    run(monkeypatch, capsys, "init", "--skip-mlflow")
    run(monkeypatch, capsys, "users", "add", "root", "--password-stdin", stdin=PASSWORD)
    code, _, err = run(
        monkeypatch,
        capsys,
        "users",
        "add",
        "ROOT",
        "--role",
        "manager",
        "--password-stdin",
        stdin=PASSWORD,
    )
    assert code == 1 and "already exists" in err


def test_demo_seed_prints_passwords_once_and_is_repeatable(
    cli_db: str, monkeypatch, capsys
) -> None:
    run(monkeypatch, capsys, "init", "--skip-mlflow")
    code, out, _ = run(monkeypatch, capsys, "demo", "seed")
    assert code == 0 and "shown only this once" in out
    for role in ("data_scientist", "approver", "manager", "admin"):
        assert role in out
    assert "gateway requests over 91 days (ingested=" in out and "rejected=0)" in out
    code, out, _ = run(monkeypatch, capsys, "demo", "seed")
    assert code == 0 and "already there" in out
    assert "Usage: gateway usage already present." in out
    code, out, _ = run(monkeypatch, capsys, "audit", "verify")
    assert code == 0


def test_audit_verify_names_the_tampered_event(cli_db: str, monkeypatch, capsys) -> None:
    run(monkeypatch, capsys, "init", "--skip-mlflow")
    for name in ("root", "dana", "sam"):  # a few audited changes
        run(
            monkeypatch, capsys, "users", "add", name, "--role", "admin" if name == "root"
            else "data_scientist", "--password-stdin", stdin=PASSWORD + "\n",
        )  # fmt: skip
    db = Database(cli_db)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_event SET actor = 'intruder' WHERE seq = 2"))
    db.dispose()
    code, _, err = run(monkeypatch, capsys, "audit", "verify")
    assert code == 1 and "BROKEN at event #2" in err and "altered" in err


def test_unreachable_database_is_one_line_exit_1(monkeypatch, capsys) -> None:
    monkeypatch.setenv("PORTAL_DATABASE_URL", "postgresql+psycopg://u:topsecret@127.0.0.1:1/x")
    get_settings.cache_clear()
    code, _, err = run(monkeypatch, capsys, "users", "list")
    assert code == 1 and "Cannot use the portal database" in err and "topsecret" not in err
    assert len(err.strip().splitlines()) == 1


def test_bad_setting_is_exit_2(monkeypatch, capsys) -> None:
    monkeypatch.setenv("PORTAL_REPORT_TZ", "Nowhere/Land")
    get_settings.cache_clear()
    code, _, err = run(monkeypatch, capsys, "init")
    assert code == 2 and "PORTAL_REPORT_TZ: unknown time zone" in err


def test_real_process_reads_the_password_from_stdin_only(tmp_path: Path) -> None:
    """Through a real ``python -m services.cli``: stdin works, and without a terminal or
    --password-stdin it refuses rather than hanging."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PORTAL_")}
    env |= {"PORTAL_HOME": str(tmp_path / "home"), "PORTAL_BCRYPT_ROUNDS": "4"}

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "services.cli", *args],
            cwd=ROOT,
            env=env,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    assert cli("init", "--skip-mlflow").returncode == 0
    added = cli("users", "add", "root", "--password-stdin", stdin=PASSWORD + "\n")
    assert added.returncode == 0, added.stderr
    no_tty = cli("users", "add", "bob", "--role", "manager", stdin="")
    assert no_tty.returncode == 2 and "--password-stdin" in no_tty.stderr
    assert cli("audit", "verify").returncode == 0


def test_init_prepares_the_mlflow_store(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.delenv("PORTAL_MLFLOW_TRACKING_URI")
    code, out, _ = run(monkeypatch, capsys, "init")
    home = get_settings().home_dir
    assert code == 0 and "MLflow tracking store" in out
    assert (home / "mlflow.db").exists() and (home / "cookie_key").exists()


def test_usage_ingest_lists_rejections_and_counts_once(
    cli_db: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    run(monkeypatch, capsys, "init", "--skip-mlflow")
    sample = ROOT / "tests" / "samples" / "bedrock_invocation_log.jsonl"
    logs = tmp_path / "bedrock.jsonl"
    logs.write_bytes(sample.read_bytes() + b"not json at all\n")
    code, out, err = run(monkeypatch, capsys, "usage", "ingest", str(logs), "--format", "bedrock")
    assert code == 0, err
    assert out.splitlines()[-1] == "ingested=3 duplicates=0 rejected=1"
    assert err.startswith(f"{logs}:4: not valid JSON")
    code, out, _ = run(monkeypatch, capsys, "usage", "ingest", str(logs), "--format", "bedrock")
    assert out.splitlines()[-1] == "ingested=0 duplicates=3 rejected=1"
    code, _, err = run(
        monkeypatch, capsys, "usage", "ingest", str(tmp_path / "nope"), "--format", "bedrock"
    )
    assert code == 2 and err.startswith("error: No such file or folder")
    code, _, err = run(monkeypatch, capsys, "usage", "ingest", str(logs), "--format", "csv")
    assert code == 2 and "invalid choice" in err


def test_usage_report_prints_the_same_numbers_as_csv_and_json(
    cli_db: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    run(monkeypatch, capsys, "init", "--skip-mlflow")
    sample = ROOT / "tests" / "samples" / "litellm_standard_logging_payload.jsonl"
    run(monkeypatch, capsys, "usage", "ingest", str(sample), "--format", "litellm")
    dates = ("--from", "2026-11-01", "--to", "2026-11-30")  # the samples are from November
    code, out, err = run(monkeypatch, capsys, "usage", "report", *dates, "--group-by", "team,model")
    assert code == 0, err
    header, *rows = out.strip().splitlines()
    assert header == "team,model,requests,input_tokens,output_tokens,cost_usd,unpriced_requests"
    assert sum(int(r.split(",")[2]) for r in rows) == 2
    code, out, _ = run(monkeypatch, capsys, "usage", "report", *dates, "--format", "json")
    as_json = json.loads(out)
    assert sum(r["requests"] for r in as_json) == sum(int(r.split(",")[2]) for r in rows)
    code, _, err = run(monkeypatch, capsys, "usage", "report", "--from", "2026-13-01", "--to", "x")
    assert code == 2 and err.startswith("error: --from must be a date as YYYY-MM-DD")
    code, _, err = run(monkeypatch, capsys, "usage", "report", *dates, "--group-by", "colour")
    assert code == 2 and "Cannot group by colour" in err


def test_usage_ingest_keeps_litellm_out_of_the_cli_start_up() -> None:
    """Only prices are needed: the CLI reads LiteLLM's price file and never imports litellm."""
    probe = (
        "import sys; from services.cli import main; "
        "from services.gateway import ingest, pricing; pricing.bundled_cost_map(); "
        "print('litellm' in sys.modules)"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.stdout.strip() == "False", done.stderr


def test_usage_ingest_tells_the_budget_webhook_and_usage_alerts_retries(
    cli_db: str, tmp_path: Path, monkeypatch, capsys
) -> None:
    run(monkeypatch, capsys, "init", "--skip-mlflow")
    code, _, err = run(monkeypatch, capsys, "usage", "alerts")
    assert code == 0 and err.strip() == "alerts=off (PORTAL_BUDGET_WEBHOOK_URL is not set)"
    db = Database(cli_db)
    teams.create_team(
        db, actor=Actor.command_line(), data=TeamCreate(name="Payments", monthly_budget=Decimal(1))
    )
    month = datetime.now(UTC).replace(day=1, hour=0, minute=0, second=10).timestamp()
    logs = write_lines(
        tmp_path / "usage.jsonl",
        [litellm(f"r{i}", month + i, response_cost=0.3) for i in range(3)],  # $0.90 of $1.00
    )
    with serve_receiver("/hooks/budget") as hook:
        monkeypatch.setenv("PORTAL_BUDGET_WEBHOOK_URL", hook.url)
        monkeypatch.setenv("PORTAL_BUDGET_WEBHOOK_SECRET", "s" * 32)
        get_settings.cache_clear()
        hook.answers = [503]
        code, out, err = run(
            monkeypatch, capsys, "usage", "ingest", str(logs), "--format", "litellm"
        )
        assert code == 0, err  # the ingest itself succeeded
        assert out.splitlines()[-1] == "ingested=3 duplicates=0 rejected=0"
        assert "Payments" in err and "answered HTTP 503" in err and "alerts_failed=1" in err
        code, _, err = run(monkeypatch, capsys, "usage", "alerts")
        assert code == 0 and err.strip() == "alerts_sent=1 alerts_failed=0"
        assert [json.loads(d.body)["level_percent"] for d in hook.deliveries] == [90, 90]
    db.dispose()
