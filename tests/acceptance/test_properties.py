"""Bad input, as property-based tests (Hypothesis): whatever a user, a form or a log file sends,
the portal either accepts it whole or refuses it in words that name the field or the line,
and a refusal writes nothing. Issue #8.

The entry points are the services the pages and the command line call: user and team forms,
dataset registration, the run search's filter box, a fine-tuning launch's hyperparameters, the
admins' price overrides (and repricing), and gateway log ingestion. The database properties
run on SQLite and, when ``PORTAL_TEST_DATABASE_URL`` is set, on PostgreSQL (the ``db``
fixture); one database serves all examples of a test, so every example measures what it
changed and names what it creates uniquely.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import itertools
import math
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, assume, event, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import func
from sqlmodel import select

from models.audit import AuditEvent
from models.dataset import Dataset, DatasetCreate, DatasetVersion
from models.team import TeamCreate
from models.training import FineTuneJob
from models.usage import (
    PriceOverride,
    PriceUnit,
    UsageDaily,
    UsageDailyTeamModel,
    UsageEvent,
    UsageSource,
)
from models.user import USERNAME_PATTERN, Role, UserCreate
from services.access import Actor
from services.auth import active_user
from services.config import Settings, get_settings
from services.db import Database, upgrade_schema
from services.errors import ValidationError
from services.experiments import runs
from services.gateway import admin
from services.gateway.ingest import IngestResult, ingest
from services.gateway.pricing import PriceBook
from services.gateway.records import RecordError, bedrock_values, litellm_values
from services.gateway.reprice import reprice_unpriced
from services.registry.dataset_files import DatasetSource, datasets_root
from services.registry.datasets import DatasetRejected, register_version
from services.registry.formats import DatasetFormat
from services.training.hyperparameters import LOCAL_RECIPE_SPECS, HyperparameterSpec, validate
from services.validation import parse
from tests.conftest import make_user
from tests.training_support import launch_local, register_chat_dataset
from tests.unit.gateway.support import SAMPLES, litellm, write_lines

CLI = Actor.command_line()
ON_ANY_DB = settings(
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],  # explaining takes long
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
_names = itertools.count()


def unique(prefix: str) -> str:
    return f"{prefix}-{next(_names)}-{uuid.uuid4().hex[:6]}"


def scientist(db: Database) -> Actor:
    """Dana, a data scientist, created on the database's first example (examples share it)."""
    user = active_user(db, "dana")
    if user is None:
        make_user(db, "root.admin", Role.ADMIN)
        return make_user(db, "dana", Role.DATA_SCIENTIST)
    return Actor.of(user)


def rows(db: Database, table: Any) -> int:
    with db.read() as session:
        return int(session.exec(select(func.count()).select_from(table)).one())


# --- Forms: users and teams (no database) -----------------------------------------------------

ANY_VALUE = st.one_of(
    st.none(),
    st.text(max_size=80),
    st.integers(),
    st.floats(allow_nan=True),
    st.lists(st.text(max_size=20), max_size=5),
    st.booleans(),
)


@settings(max_examples=150, deadline=None)
@given(
    username=ANY_VALUE, display_name=ANY_VALUE, email=ANY_VALUE, password=ANY_VALUE, roles=ANY_VALUE
)
def test_user_form_input_is_accepted_clean_or_refused_by_field(
    username: object, display_name: object, email: object, password: object, roles: object
) -> None:
    form = {
        "username": username,
        "display_name": display_name,
        "email": email,
        "password": password,
        "roles": roles,
    }
    try:
        user = parse(UserCreate, form)
    except ValidationError as error:
        assert error.fields and set(error.fields) <= set(form)
        assert all(message for message in error.fields.values())
        return
    assert USERNAME_PATTERN.match(user.username)
    assert user.display_name == user.display_name.strip() and user.display_name
    assert len(user.password) >= 12 and len(user.password.encode()) <= 72
    for text in (user.display_name, user.password, user.email or ""):
        assert "\x00" not in text
    assert user.roles and len(set(user.roles)) == len(user.roles)


@settings(max_examples=150, deadline=None)
@given(
    name=ANY_VALUE,
    cost_center=ANY_VALUE,
    budget=st.one_of(ANY_VALUE, st.decimals(allow_nan=True, allow_infinity=True)),
)
def test_team_form_input_is_accepted_clean_or_refused_by_field(
    name: object, cost_center: object, budget: object
) -> None:
    form = {"name": name, "cost_center": cost_center, "monthly_budget": budget}
    try:
        team = parse(TeamCreate, form)
    except ValidationError as error:
        assert error.fields and set(error.fields) <= set(form)
        return
    assert team.monthly_budget >= 0 and team.monthly_budget.is_finite()
    assert -team.monthly_budget.as_tuple().exponent <= 2  # type: ignore[operator]


# --- Hyperparameters of a fine-tuning launch ---------------------------------------------------

SPECS = {spec.name: spec for spec in LOCAL_RECIPE_SPECS}
DEFAULT = "default"
NOT_NUMBERS = st.sampled_from(["fast", "1,5", "ten", "0x10", "--1", "[1]", "1e400", "nan", "-inf"])


def _numeric_entry(spec: HyperparameterSpec) -> st.SearchStrategy[tuple[object, object]]:
    """(typed value, what the launch should keep: the number, or None for a refusal)."""
    low, high = spec.minimum, spec.maximum
    assert low is not None and high is not None
    if spec.kind == "int":
        inside = st.integers(int(low), int(high))
        good = st.one_of(
            inside.map(lambda n: (n, n)),
            inside.map(lambda n: (f" {n} ", n)),
            inside.map(lambda n: (float(n), n)),
        )
        halves = st.integers(int(low), int(high) - 1).map(lambda n: (n + 0.5, None))
        outside = st.one_of(
            st.integers(max_value=int(low) - 1), st.integers(min_value=int(high) + 1)
        )
    else:
        inside_f = st.floats(low, high, allow_nan=False)
        good = st.one_of(inside_f.map(lambda f: (f, f)), inside_f.map(lambda f: (repr(f), f)))
        halves = st.nothing()
        outside = st.one_of(
            st.floats(max_value=low, exclude_max=True, allow_infinity=False),
            st.floats(min_value=high, exclude_min=True, allow_infinity=False),
        )
    bad = st.one_of(
        outside,
        NOT_NUMBERS,
        st.sampled_from([math.nan, math.inf, -math.inf, True, False, 10**400, -(10**400)]),
        st.lists(st.integers(), max_size=2),
    ).map(lambda v: (v, None))
    blank = st.sampled_from([None, "", "   "]).map(lambda v: (v, DEFAULT))
    return st.one_of(good, halves, bad, blank)


def _choice_entry(spec: HyperparameterSpec) -> st.SearchStrategy[tuple[object, object]]:
    good = st.sampled_from(spec.choices).map(lambda c: (f" {c} ", c))
    bad = st.one_of(
        st.text(max_size=10).filter(lambda t: t.strip() and t.strip() not in spec.choices),
        st.integers(),
        st.booleans(),
    ).map(lambda v: (v, None))
    return st.one_of(good, bad, st.just((None, DEFAULT)))


def _entry(spec: HyperparameterSpec) -> st.SearchStrategy[tuple[object, object]]:
    return _choice_entry(spec) if spec.kind == "choice" else _numeric_entry(spec)


@st.composite
def hyperparameter_forms(draw: st.DrawFn) -> tuple[dict[str, object], dict[str, object]]:
    """(the mapping a form or API sends, what each name should become: a value, DEFAULT, or
    None when that name must be refused)."""
    chosen = draw(st.lists(st.sampled_from(list(SPECS)), unique=True, max_size=len(SPECS)))
    form: dict[str, object] = {}
    expected: dict[str, object] = {}
    for name in chosen:
        form[name], expected[name] = draw(_entry(SPECS[name]))
    for name in draw(st.lists(st.text(min_size=1, max_size=12), max_size=2)):
        if name not in SPECS:
            form[name], expected[name] = draw(st.integers(0, 3)), None
    return form, expected


def _check_hyperparameters(
    outcome: dict[str, Any] | ValidationError, expected: dict[str, object]
) -> None:
    refused = {name for name, value in expected.items() if value is None}
    if isinstance(outcome, ValidationError):
        assert set(outcome.fields) == refused, (outcome.fields, refused)
        for name in refused:  # each bad name is in the message, with what it allows
            assert f"{name}: {outcome.fields[name]}" in str(outcome)
            spec = SPECS.get(name)
            if spec is not None and outcome.fields[name] not in (
                "must be a number",
                "must be a finite number",
                "must be a whole number",
            ):
                assert spec.range_text in outcome.fields[name]
        return
    assert not refused, f"accepted {refused} that should have been refused"
    assert set(outcome) == set(SPECS)
    for name, spec in SPECS.items():
        want = expected.get(name, DEFAULT)
        value = outcome[name]
        assert value == (spec.default if want == DEFAULT else want), name
        if spec.kind == "int":
            assert type(value) is int and spec.minimum <= value <= spec.maximum  # type: ignore[operator]
        elif spec.kind == "float":
            assert math.isfinite(value) and spec.minimum <= value <= spec.maximum


@settings(max_examples=200, deadline=None)
@given(hyperparameter_forms())
@example(({"epochs": 10**400}, {"epochs": None}))  # was an OverflowError, not a refusal
@example(({"epochs": True}, {"epochs": None}))  # was taken as 1 epoch
def test_hyperparameters_are_accepted_within_range_or_refused_naming_each_field(
    case: tuple[dict[str, object], dict[str, object]],
) -> None:
    form, expected = case
    try:
        outcome: dict[str, Any] | ValidationError = dict(
            validate(LOCAL_RECIPE_SPECS, form, where="the causal-LM recipe")
        )
    except ValidationError as error:
        outcome = error
    _check_hyperparameters(outcome, expected)


@settings(ON_ANY_DB, max_examples=12)
@given(case=hyperparameter_forms())
@example(case=({"epochs": 10**400, "seed": -1}, {"epochs": None, "seed": None}))
def test_a_launch_with_bad_hyperparameters_writes_no_job_and_no_audit_event(
    db: Database, case: tuple[dict[str, object], dict[str, object]]
) -> None:
    dana = scientist(db)
    if rows(db, Dataset) == 0:  # once per database: the examples share it
        register_chat_dataset(db, dana, count=20)
    with db.read() as session:
        version = session.exec(select(DatasetVersion)).first()
    assert version is not None and version.id is not None
    form, expected = case
    jobs_before, audit_before = rows(db, FineTuneJob), rows(db, AuditEvent)
    try:
        outcome = launch_local(db, dana, version.id, hyperparameters=form)
    except ValidationError as error:
        event("refused")
        _check_hyperparameters(error, expected)
        assert (rows(db, FineTuneJob), rows(db, AuditEvent)) == (jobs_before, audit_before)
        return
    _check_hyperparameters(dict(outcome.job.hyperparameters), expected)
    assert (rows(db, FineTuneJob), rows(db, AuditEvent)) == (jobs_before + 1, audit_before + 1)
    with db.read() as session:
        stored = session.get(FineTuneJob, outcome.job.id)
    assert stored is not None and stored.hyperparameters == outcome.job.hyperparameters


# --- Dataset files ------------------------------------------------------------------------------

WORDS = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20).filter(
    lambda t: not t.isspace()
)
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | WORDS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(WORDS, inner, max_size=3),
    max_leaves=6,
)
GOOD_RECORDS = {
    DatasetFormat.CHAT: st.builds(
        lambda q, a: {
            "messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]
        },
        WORDS,
        WORDS,
    ),
    DatasetFormat.BEDROCK_PROMPT_COMPLETION: st.builds(
        lambda p, c: {"prompt": p, "completion": c}, WORDS, WORDS
    ),
    DatasetFormat.CONTINUED_PRETRAINING: st.builds(lambda t: {"input": t}, WORDS),
}
BAD_LINES = st.sampled_from(
    [
        b"{not json",
        b"",  # an empty line inside the file
        b"   ",
        b'{"messages": []}',
        b'{"prompt": "", "completion": ""}',
        b'{"input": 42}',
        b"[1, 2, 3]",
        b"null",
        b'"just a string"',
        b'{"messages": [{"role": "user", "content": "hi"}], "input": "", "prompt": 1}',
        b'{"a": 1}\x00',
        b'{"input": "caf\xe9"}',  # Latin-1, not UTF-8
    ]
)
RANDOM_BYTES = st.binary(min_size=1, max_size=40).filter(lambda b: b"\n" not in b)


@st.composite
def dataset_files(draw: st.DrawFn) -> tuple[DatasetFormat, list[bytes], list[str]]:
    """A format, the lines of a file, and what each line is: "good" (a valid record of that
    format), "bad" (invalid whatever the format) or "any" (random JSON or bytes)."""
    fmt = draw(st.sampled_from(list(GOOD_RECORDS)))
    kinds = draw(st.lists(st.sampled_from(["good", "good", "bad", "any"]), min_size=1, max_size=8))
    lines = []
    for kind in kinds:
        if kind == "good":
            lines.append(orjson.dumps(draw(GOOD_RECORDS[fmt])))
        elif kind == "bad":
            lines.append(draw(BAD_LINES))
        else:
            lines.append(draw(st.one_of(JSON_VALUES.map(orjson.dumps), RANDOM_BYTES)))
    return fmt, lines, kinds


def stored_files() -> list[Path]:
    root = datasets_root(get_settings())
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


@settings(ON_ANY_DB, max_examples=25)
@given(case=dataset_files())
@example(case=(DatasetFormat.CHAT, [b'{"messages": "x"}', b"\xff\xfe\x00{"], ["bad", "any"]))
def test_a_dataset_file_is_registered_whole_or_refused_naming_its_bad_lines(
    db: Database, case: tuple[DatasetFormat, list[bytes], list[str]]
) -> None:
    dana = scientist(db)
    fmt, lines, kinds = case
    data = b"\n".join(lines) + b"\n"
    name = unique("props")
    before = rows(db, Dataset), rows(db, DatasetVersion), rows(db, AuditEvent), stored_files()
    try:
        registered = register_version(
            db,
            get_settings(),
            actor=dana,
            source=DatasetSource.upload(io.BytesIO(data), f"{name}.jsonl", len(data)),
            fmt=fmt,
            new_dataset=DatasetCreate(name=name),
        )
    except DatasetRejected as refused:
        report = refused.report
        assert "Nothing was registered" in str(refused) and refused.fields == {
            "file": f"{report.issue_count} bad lines"
        }
        after = rows(db, Dataset), rows(db, DatasetVersion), rows(db, AuditEvent), stored_files()
        assert after == before, "a refused file left a row or a file behind"
        named = {issue.line for issue in report.issues}
        assert report.issue_count == len(report.issues) >= 1
        for issue in report.issues:
            assert str(issue).startswith(f"line {issue.line}: ") and issue.reason
        if report.issues[0].reason.startswith("not text"):  # the whole file looks binary
            assert [i.line for i in report.issues] == [1]
            return
        assert named <= set(range(1, len(lines) + 1))
        bad = {n for n, kind in enumerate(kinds, 1) if kind == "bad"}
        good = {n for n, kind in enumerate(kinds, 1) if kind == "good"}
        assert bad <= named, f"bad lines {sorted(bad - named)} were not named"
        assert not good & named, f"valid lines {sorted(good & named)} were called bad"
        event("refused")
        return
    event("registered")
    assert "bad" not in kinds
    version = registered.version
    assert version.sha256 == hashlib.sha256(data).hexdigest()
    assert version.record_count == registered.report.valid_record_count == len(lines)
    assert Path(version.storage_uri).read_bytes() == data
    counts = rows(db, Dataset), rows(db, DatasetVersion), rows(db, AuditEvent)
    assert counts == (before[0] + 1, before[1] + 1, before[2] + 1)


# --- Price overrides and repricing -------------------------------------------------------------

PRICES = st.one_of(
    st.decimals(0, 20_000, places=2),
    st.decimals(0, 20, places=8),
    st.decimals(allow_nan=True, allow_infinity=True),
    st.sampled_from([Decimal("-0.01"), Decimal("1E+30"), Decimal("1E-9"), Decimal("-0")]),
)
MODEL_NAMES = st.one_of(
    WORDS,
    st.text(max_size=30),
    st.sampled_from(["", "   ", "a" * 301, "gpt\x00-4o", " inhouse-7b\n", "x" * 300]),
)


def _price_problems(
    model: str, unit: PriceUnit, prices: dict[str, Decimal | None], note: str
) -> set[str]:
    """What set_price_override must refuse, worked out here independently of it."""
    ceiling = {PriceUnit.PER_1K: 10, PriceUnit.PER_1M: 10_000}[unit]

    def controls(text: str) -> bool:
        return any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in text)

    wrong = {
        name
        for name, price in prices.items()
        if price is not None
        and not (
            price.is_finite() and 0 <= price <= ceiling and price == price.quantize(Decimal("1E-8"))
        )
    }
    stripped = model.strip()
    if not stripped or len(stripped) > 300 or controls(stripped):
        wrong.add("model")
    if controls(note.strip().replace("\n", "").replace("\t", "")):
        wrong.add("note")
    return wrong


def overrides(db: Database) -> dict[str, tuple[Any, ...]]:
    with db.read() as session:
        return {
            o.model: (
                o.unit,
                o.input_price,
                o.output_price,
                o.cache_read_price,
                o.cache_write_price,
                o.note,
            )
            for o in session.exec(select(PriceOverride))
        }


@settings(ON_ANY_DB, max_examples=60)
@given(
    model=MODEL_NAMES,
    unit=st.sampled_from(PriceUnit),
    input_price=PRICES,
    output_price=PRICES,
    cache_read=st.none() | PRICES,
    cache_write=st.none() | PRICES,
    note=st.text(max_size=20),
)
@example(
    model="gpt\x00-4o", unit=PriceUnit.PER_1M, input_price=Decimal("123456789"),
    output_price=Decimal("0.123456789"), cache_read=None, cache_write=None, note="a\x00b",
)  # fmt: skip  # a NUL the PostgreSQL driver refused, an overflow, a price silently rounded
@example(
    model="m" * 250, unit=PriceUnit.PER_1K, input_price=Decimal(1), output_price=Decimal(2),
    cache_read=None, cache_write=None, note="",
)  # fmt: skip  # was a crash on PostgreSQL: the audit event's entity id holds 200 characters
def test_a_price_override_is_stored_as_typed_or_refused_by_field(
    db: Database,
    model: str,
    unit: PriceUnit,
    input_price: Decimal,
    output_price: Decimal,
    cache_read: Decimal | None,
    cache_write: Decimal | None,
    note: str,
) -> None:
    prices = {
        "input_price": input_price,
        "output_price": output_price,
        "cache_read_price": cache_read,
        "cache_write_price": cache_write,
    }
    expected_problems = _price_problems(model, unit, prices, note)
    before, audit_before = overrides(db), rows(db, AuditEvent)
    try:
        admin.set_price_override(
            db, actor=CLI, model=model, unit=unit, input_price=input_price,
            output_price=output_price, cache_read_price=cache_read, cache_write_price=cache_write,
            note=note,
        )  # fmt: skip
    except ValidationError as refused:
        event("refused")
        assert set(refused.fields) == expected_problems
        for name in refused.fields:
            assert name.replace("_", " ") in str(refused)
        assert (overrides(db), rows(db, AuditEvent)) == (before, audit_before)
        return
    event("stored")
    assert not expected_problems, f"stored despite bad {expected_problems}"
    after = overrides(db)
    stored = (unit.value, input_price, output_price, cache_read, cache_write, note.strip())
    assert after == {**before, model.strip(): stored}  # read back exactly as typed
    assert rows(db, AuditEvent) == audit_before + 1


VALID_PRICES = st.decimals(0, 10, places=8)


def totals(db: Database, table: Any, **where: str) -> dict[str, Any]:
    """Sums of a rollup's (or the events') counters, optionally for one model."""
    columns = ["input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost"]
    if table is not UsageEvent:
        columns += ["requests", "errors", "unpriced_requests"]
    with db.read() as session:
        query = select(*(func.coalesce(func.sum(getattr(table, c)), 0) for c in columns))
        for name, value in where.items():
            query = query.where(getattr(table, name) == value)
        sums = dict(zip(columns, session.exec(query).one(), strict=True))
    sums["cost"] = Decimal(str(sums["cost"]))
    return sums


def close(a: Decimal, b: Decimal, events: int) -> bool:
    """Costs agree to the PRICE column's eight decimals, per event stored."""
    return abs(a - b) <= Decimal("1E-8") * max(events, 1) + abs(b) * Decimal("1E-12")


@settings(ON_ANY_DB, max_examples=10)
@given(
    tokens=st.lists(
        # (plain input ≥ 1: a request that used no tokens is free, so never unpriced)
        st.tuples(st.integers(1, 2_000_000), *(st.integers(0, 2_000_000) for _ in range(3))),
        min_size=1,
        max_size=5,
    ),
    unit=st.sampled_from(PriceUnit),
    prices=st.tuples(
        VALID_PRICES, VALID_PRICES, st.none() | VALID_PRICES, st.none() | VALID_PRICES
    ),
)
def test_repricing_costs_every_unpriced_request_and_the_rollups_agree(
    db: Database,
    tokens: list[tuple[int, int, int, int]],
    unit: PriceUnit,
    prices: tuple[Decimal, Decimal, Decimal | None, Decimal | None],
) -> None:
    model = unique("inhouse")
    records = [
        litellm(
            unique("req"), 1795608208.0 + i, model=model, custom_llm_provider="hosted_vllm",
            response_cost=None, prompt_tokens=prompt + read + write, completion_tokens=out,
            metadata={"usage_object": {"cache_read_input_tokens": read,
                                       "cache_creation_input_tokens": write}},
        )
        for i, (prompt, out, read, write) in enumerate(tokens)
    ]  # fmt: skip
    folder = get_settings().home_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = write_lines(folder / f"{model}.jsonl", records)
    first = ingest(db, get_settings(), actor=CLI, location=str(path), source=UsageSource.LITELLM)
    assert (first.ingested, first.rejected) == (len(records), 0)
    assert totals(db, UsageDaily, model=model)["unpriced_requests"] == len(records)
    per = Decimal(unit.tokens)
    price_in, price_out, read_price, write_price = prices
    admin.set_price_override(
        db, actor=CLI, model=model, unit=unit, input_price=price_in, output_price=price_out,
        cache_read_price=read_price, cache_write_price=write_price,
    )  # fmt: skip
    assert reprice_unpriced(db, actor=CLI, model=model) == len(records)
    read_price = price_in if read_price is None else read_price
    write_price = price_in if write_price is None else write_price
    expected = sum(
        ((price_in * p + price_out * o + read_price * r + write_price * w) / per
         for p, o, r, w in tokens),
        Decimal(0),
    )  # fmt: skip
    events = totals(db, UsageEvent, model=model)
    for table in (UsageDaily, UsageDailyTeamModel):
        rollup = totals(db, table, model=model)
        assert rollup["unpriced_requests"] == 0 and rollup["requests"] == len(records)
        assert close(rollup["cost"], expected, len(records)), (rollup["cost"], expected)
        assert close(events["cost"], rollup["cost"], len(records))
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens"):
            assert rollup[name] == events[name]
    assert events["cache_read_tokens"] == sum(t[2] for t in tokens)
    assert reprice_unpriced(db, actor=CLI, model=model) == 0


# --- Gateway log ingestion ---------------------------------------------------------------------

SAMPLE_RECORDS = {
    source: [orjson.loads(line) for line in (SAMPLES / name).read_bytes().splitlines() if line]
    for source, name in (
        (UsageSource.LITELLM, "litellm_standard_logging_payload.jsonl"),
        (UsageSource.BEDROCK, "bedrock_invocation_log.jsonl"),
    )
}
FIELDS_READ = {
    UsageSource.LITELLM: [
        "id", "startTime", "prompt_tokens", "completion_tokens", "response_cost", "model",
        "metadata", "request_tags", "status", "cache_hit", "custom_llm_provider",
    ],
    UsageSource.BEDROCK: [
        "requestId", "timestamp", "modelId", "input", "output", "identity", "requestMetadata",
        "errorCode",
    ],
}  # fmt: skip
ID_FIELD = {UsageSource.LITELLM: "id", UsageSource.BEDROCK: "requestId"}
FIELD_VALUES = st.one_of(
    JSON_VALUES,
    st.integers(-5, 20_000_000),
    st.floats(1.4e9, 4.2e9),  # epoch seconds, some beyond 2100
    st.sampled_from(["2026-11-02T09:15:27Z", "2026-11-02T09:15:27", "yesterday", "", None]),
    st.dictionaries(st.sampled_from(["inputTokenCount", "outputTokenCount"]), JSON_VALUES),
)


@st.composite
def log_lines(draw: st.DrawFn, source: UsageSource) -> bytes:
    """One line: a sample record of either format with a fresh (or an earlier) request id and
    maybe some fields changed or dropped, random JSON, random bytes, or a gzip fragment."""
    kind = draw(st.sampled_from(["record", "record", "record", "json", "bytes", "gzip"]))
    if kind == "json":
        value = draw(JSON_VALUES)
        assume(value != [])  # see test_an_empty_json_array_line_is_not_silently_dropped
        return orjson.dumps(value)
    if kind == "bytes":
        return draw(RANDOM_BYTES)
    if kind == "gzip":
        fragment = gzip.compress(draw(st.binary(max_size=30)), mtime=0)[: draw(st.integers(2, 40))]
        return fragment.replace(b"\n", b" ")  # one line
    own = draw(st.booleans()) or draw(st.integers(0, 9)) == 0
    record_source = source if own else next(s for s in UsageSource if s is not source)
    record = dict(draw(st.sampled_from(SAMPLE_RECORDS[record_source])))
    record[ID_FIELD[record_source]] = f"id-{draw(st.integers(0, 30))}"
    for name in draw(st.lists(st.sampled_from(FIELDS_READ[record_source]), max_size=2)):
        if draw(st.booleans()):
            record.pop(name, None)
        else:
            record[name] = draw(FIELD_VALUES)
    return orjson.dumps(record)


def _expected(source: UsageSource, lines: list[bytes], prefix: str) -> tuple[list[int], list[Any]]:
    """The lines a correct ingest rejects, and the rows it accepts (repeats included), worked
    out record by record with the format's parser."""
    zone = get_settings().zone
    book = PriceBook()
    rejected: list[int] = []
    accepted: list[Any] = []
    for number, line in enumerate(lines, 1):
        if not line or line.isspace():
            continue
        try:
            document = orjson.loads(line)
        except orjson.JSONDecodeError:
            rejected.append(number)
            continue
        for record in document if isinstance(document, list) else [document]:
            try:
                if source is UsageSource.LITELLM:
                    values = litellm_values(record, zone)
                else:
                    values = bedrock_values(record, zone, lambda arn, model: ("", ""))
            except RecordError:
                rejected.append(number)
                continue
            book.price_values(values)
            accepted.append(values)
    return rejected, accepted


def _prefixed(line: bytes, source: UsageSource, prefix: str) -> bytes:
    """Request ids unique to this example (examples share the database)."""
    return line.replace(b'"id-', f'"{prefix}-'.encode())


def usage_totals(db: Database) -> list[dict[str, Any]]:
    return [totals(db, UsageEvent), totals(db, UsageDaily), totals(db, UsageDailyTeamModel)]


@settings(ON_ANY_DB, max_examples=20)
@given(data=st.data(), source=st.sampled_from(UsageSource), compress=st.booleans())
def test_any_log_lines_are_ingested_counted_or_rejected_by_line_and_the_totals_add_up(
    db: Database, data: st.DataObject, source: UsageSource, compress: bool
) -> None:
    prefix = unique("p")
    lines = [
        _prefixed(line, source, prefix)
        for line in data.draw(st.lists(log_lines(source), min_size=1, max_size=12))
    ]
    first = lines[0].strip()
    assume(first not in (b"{", b"[") and not first.startswith(b"\x1f\x8b"))  # other file types
    rejected_lines, accepted = _expected(source, lines, prefix)
    with db.read() as session:  # ids an earlier example stored (random ids can repeat)
        seen = set(
            session.exec(select(UsageEvent.request_id).where(UsageEvent.source == source.value))
        )
    new = []
    for values in accepted:  # the first record with an id wins
        if values[1] not in seen:
            seen.add(values[1])
            new.append(values)
    assume(all(v[18] is None or v[18] < 1_000_000 for v in new))  # see the overflow test below
    content = [n for n, line in enumerate(lines, 1) if line and not line.isspace()]
    body = b"\n".join(lines) + b"\n"
    folder = get_settings().home_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prefix}.jsonl{'.gz' if compress else ''}"
    path.write_bytes(gzip.compress(body) if compress else body)
    before = usage_totals(db)

    result = ingest(db, get_settings(), actor=CLI, location=str(path), source=source)

    assert result.ingested == len(new) and result.rejected == len(rejected_lines)
    assert result.ingested + result.duplicates + result.rejected == len(accepted) + len(
        rejected_lines
    )
    if not any(line.lstrip().startswith(b"[") for line in lines):
        assert result.ingested + result.duplicates + result.rejected == len(content)
    assert sorted(r.line for r in result.rejections) == rejected_lines
    for rejection in result.rejections:
        assert rejection.uri == str(path) and rejection.reason
        assert rejection.describe().startswith(f"{path}:{rejection.line}: ")
    after = usage_totals(db)
    priced = [v for v in new if v[19]]
    added = {
        "input_tokens": sum(v[14] for v in new),
        "output_tokens": sum(v[15] for v in new),
        "cache_read_tokens": sum(v[16] for v in new),
        "cache_write_tokens": sum(v[17] for v in new),
        "requests": len(new),
        "errors": sum(v[11] == "failure" for v in new),
        "unpriced_requests": len(new) - len(priced),
    }
    cost = sum((Decimal(v[18]) for v in priced), Decimal(0))
    for was, now in zip(before, after, strict=True):
        for name, amount in added.items():
            if name in now:
                assert now[name] - was[name] == amount, name
        assert close(now["cost"] - was["cost"], cost, len(new) + 1)

    again = ingest(db, get_settings(), actor=CLI, location=str(path), source=source)
    assert (again.ingested, again.rejected) == (0, result.rejected)
    assert again.duplicates == result.ingested + result.duplicates
    assert usage_totals(db) == after


# --- The run search's filter box ---------------------------------------------------------------

FILTER_TOKENS = st.sampled_from(
    [
        "metrics.eval_loss", "params.lr", "tags.team", "attributes.status", "attribute.run_name",
        "run_name", "metrics.`eval loss`", "tags.\"mlflow.runName\"", "datasets.name", "params.",
        "metric.", "foo.bar", "<", ">", "=", "!=", "<=", ">=", "==", "LIKE", "ILIKE", "IN",
        "NOT IN", "and", "AND", "or", "OR", "(", ")", "'1e-4'", '"x"', "1.2", "-3", "1e400",
        "NaN", "'", "%", ",", "`", "'%a_'", "('a', 'b')", "\\", ";", "--", "DROP TABLE runs",
        "\x00", "é", "'2024-01-01'", "is", "null", "*",
    ]
)  # fmt: skip
FILTERS = st.one_of(
    st.text(max_size=40),
    st.lists(FILTER_TOKENS, min_size=1, max_size=7).map(" ".join),
)


@pytest.fixture(scope="module")
def sweep(shared_tracking_uri: str) -> dict[str, Any]:
    """Two experiments of eight runs with an eval_loss and a learning rate each, once."""
    from mlflow.entities import Metric, Param
    from mlflow.tracking import MlflowClient

    client = MlflowClient(shared_tracking_uri)
    experiments = [client.create_experiment(unique("props-sweep")) for _ in range(2)]
    losses: dict[str, tuple[float, str]] = {}
    for i in range(8):
        run = client.create_run(experiments[i % 2], run_name=f"r{i}")
        loss, lr = round(0.5 + i * 0.125, 3), ("1e-4", "3e-4")[i % 2]
        client.log_batch(
            run.info.run_id, metrics=[Metric("eval_loss", loss, 0, 0)], params=[Param("lr", lr)]
        )
        client.set_terminated(run.info.run_id)
        losses[run.info.run_id] = (loss, lr)
    return {"experiments": experiments, "runs": losses}


@pytest.fixture
def portal() -> Iterator[tuple[Database, Settings, Actor]]:
    settings_ = get_settings()
    database = Database(settings_.resolved_database_url)
    upgrade_schema(database)
    yield database, settings_, scientist(database)
    database.dispose()


@settings(ON_ANY_DB, max_examples=80)
@given(text=FILTERS)
@example(text="metrics.eval_loss <")
@example(text="params.lr = 1e-4")
def test_any_filter_either_searches_or_is_explained_in_plain_words(
    portal: tuple[Database, Settings, Actor], sweep: dict[str, Any], text: str
) -> None:
    database, settings_, dana = portal
    try:
        found = runs.search_runs(
            database, settings_, actor=dana, experiment_ids=sweep["experiments"],
            filter_string=text,
        )  # fmt: skip
    except ValidationError as refused:
        event("refused")
        message = str(refused)
        assert message.startswith("Filter: ") and runs.FILTER_EXAMPLE in message
        assert set(refused.fields) == {"filter"} and refused.fields["filter"].strip()
        assert "Traceback" not in message
        return
    event("searched")
    ids = [r.run_id for r in found.runs]
    assert len(ids) == len(set(ids)) and set(ids) <= set(sweep["runs"])


@settings(ON_ANY_DB, max_examples=40)
@given(
    op=st.sampled_from(["<", "<=", ">", ">=", "=", "!="]),
    bound=st.floats(0, 2, allow_nan=False).map(lambda f: round(f, 3)),
    lr=st.none() | st.sampled_from(["1e-4", "3e-4", "1e-3"]),
)
def test_a_valid_filter_finds_exactly_the_matching_runs(
    portal: tuple[Database, Settings, Actor],
    sweep: dict[str, Any],
    op: str,
    bound: float,
    lr: str | None,
) -> None:
    database, settings_, dana = portal
    text = f"metrics.eval_loss {op} {bound}" + (f" and params.lr = '{lr}'" if lr else "")
    found = runs.search_runs(
        database, settings_, actor=dana, experiment_ids=sweep["experiments"], filter_string=text
    )
    compare = {
        "<": float.__lt__, "<=": float.__le__, ">": float.__gt__, ">=": float.__ge__,
        "=": float.__eq__, "!=": float.__ne__,
    }[op]  # fmt: skip
    expected = {
        run_id
        for run_id, (loss, run_lr) in sweep["runs"].items()
        if compare(loss, bound) and (lr is None or run_lr == lr)
    }
    assert {r.run_id for r in found.runs} == expected, text


# --- Ingest bugs found by the properties above (services/gateway is being optimised elsewhere:
# reported with these reproducers rather than fixed here) ----------------------------------------


def _ingest_lines(db: Database, source: UsageSource, lines: list[bytes]) -> IngestResult:
    folder = get_settings().home_dir / "logs"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{unique('repro')}.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    return ingest(db, get_settings(), actor=CLI, location=str(path), source=source)


def test_an_empty_json_array_line_is_not_silently_dropped(db: Database) -> None:
    result = _ingest_lines(
        db, UsageSource.LITELLM, [orjson.dumps(litellm("ok", 1795608208.0)), b"[]"]
    )
    assert result.ingested + result.duplicates + result.rejected == 2


def test_a_cost_no_column_can_hold_is_a_rejected_line(db: Database) -> None:
    huge = litellm("huge-cost", 1795608208.0, response_cost=1e12)
    result = _ingest_lines(db, UsageSource.LITELLM, [orjson.dumps(huge)])
    assert (result.ingested, result.rejected) == (0, 1)
    assert "response_cost" in result.rejections[0].reason
