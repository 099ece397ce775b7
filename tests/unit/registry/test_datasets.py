"""Registering dataset versions through the service, on SQLite and PostgreSQL: checks, PII
flags and exceptions, content addressing, splits, limits, and that nothing is left behind."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlmodel import func, select

from models.dataset import Dataset, DatasetCreate, DatasetVersion
from models.user import Role
from services import audit
from services.access import Actor
from services.config import get_settings
from services.db import Database
from services.errors import Conflict, PermissionDenied, ValidationError
from services.registry import dataset_catalog, datasets
from services.registry.dataset_files import DatasetSource, datasets_root
from services.registry.datasets import DatasetRejected, SplitOptions
from services.registry.formats import DatasetFormat
from tests.conftest import make_user

CHAT = DatasetFormat("chat")


def chat_lines(count: int, *, pii_every: int = 0, bad_line: int | None = None) -> bytes:
    lines = []
    for i in range(1, count + 1):
        user = f"How do I reset password number {i}?"
        if pii_every and i % pii_every == 0:
            user += " Mail me at jane.doe@example.com"
        record = {
            "messages": [
                {"role": "user", "content": user},
                {"role": "assistant", "content": f"Open settings, step {i}."},
            ]
        }
        lines.append("{not json" if i == bad_line else json.dumps(record))
    return ("\n".join(lines) + "\n").encode()


def upload(data: bytes, name: str = "tickets.jsonl") -> DatasetSource:
    return DatasetSource.upload(io.BytesIO(data), name, len(data))


def stored_files() -> list[Path]:
    root = datasets_root(get_settings())
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []


def dataset_rows(db: Database) -> tuple[int, int]:
    with db.read() as session:
        return (
            session.exec(select(func.count()).select_from(Dataset)).one(),
            session.exec(select(func.count()).select_from(DatasetVersion)).one(),
        )


@pytest.fixture
def dana(db: Database, admin: Actor) -> Actor:
    return make_user(db, "dana", Role.DATA_SCIENTIST)


def register(
    db: Database,
    actor: Actor,
    data: bytes,
    *,
    dataset_id: int | None = None,
    name: str = "tickets",
    **split: object,
) -> datasets.Registration:
    return datasets.register_version(
        db,
        get_settings(),
        actor=actor,
        source=upload(data),
        fmt=CHAT,
        dataset_id=dataset_id,
        new_dataset=None if dataset_id else DatasetCreate(name=name),
        split=SplitOptions(**split),  # type: ignore[arg-type]
    )


def test_valid_upload_is_registered_with_checksum_and_splits(db: Database, dana: Actor) -> None:
    data = chat_lines(500)
    outcome = register(db, dana, data)
    version = outcome.version
    assert not outcome.duplicate and version.number == 1 and version.record_count == 500
    assert version.pii_status == "clean" and version.size_bytes == len(data)
    import hashlib

    assert version.sha256 == hashlib.sha256(data).hexdigest()
    assert Path(version.storage_uri).read_bytes() == data
    splits = version.splits
    assert set(splits) == {"train", "validation", "test"}
    assert sum(s["records"] for s in splits.values()) == 500 and splits["train"]["records"] == 400
    assert all(Path(s["uri"]).exists() and len(s["sha256"]) == 64 for s in splits.values())
    rows = dataset_catalog.list_datasets(db, actor=dana)
    assert [(r.name, r.versions, r.latest, r.records) for r in rows] == [("tickets", 1, 1, 500)]


def test_same_bytes_are_the_same_version_and_new_bytes_a_new_one(db: Database, dana: Actor) -> None:
    first = register(db, dana, chat_lines(50))
    dataset_id = first.version.dataset_id
    again = register(db, dana, chat_lines(50), dataset_id=dataset_id)
    assert again.duplicate and again.version.number == 1
    changed = register(db, dana, chat_lines(51), dataset_id=dataset_id)
    assert not changed.duplicate and changed.version.number == 2
    assert dataset_rows(db) == (1, 2)


def test_one_bad_line_rejects_the_file_and_leaves_nothing(db: Database, dana: Actor) -> None:
    with pytest.raises(DatasetRejected) as caught:
        register(db, dana, chat_lines(2_000, bad_line=1_234))
    report = caught.value.report
    assert report.issue_count == 1 and report.issues[0].line == 1_234
    assert "1 bad line(s) among 2,000" in str(caught.value)
    assert dataset_rows(db) == (0, 0) and stored_files() == []


def test_binary_file_is_refused_plainly(db: Database, dana: Actor) -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
    with pytest.raises(DatasetRejected) as caught:
        register(db, dana, png)
    assert "not text" in caught.value.report.issues[0].reason
    assert stored_files() == []


def test_file_over_the_size_limit_is_refused(
    db: Database, dana: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PORTAL_MAX_DATASET_MB", "1")
    get_settings.cache_clear()
    big = chat_lines(20_000)
    assert len(big) > 1 << 20
    with pytest.raises(ValidationError, match="more than the 1 MB limit"):
        register(db, dana, big)
    unknown_size = DatasetSource.upload(io.BytesIO(big), "stream.jsonl")  # size not announced
    with pytest.raises(ValidationError, match="larger than the 1 MB limit"):
        datasets.register_version(
            db,
            get_settings(),
            actor=dana,
            source=unknown_size,
            fmt=CHAT,
            new_dataset=DatasetCreate(name="big"),
        )
    assert dataset_rows(db) == (0, 0) and stored_files() == []


def test_bad_split_settings_are_refused_before_reading(db: Database, dana: Actor) -> None:
    with pytest.raises(ValidationError, match="add up to 1"):
        register(db, dana, chat_lines(10), fractions=(0.5, 0.1, 0.1))
    with pytest.raises(ValidationError, match="top-level JSON key"):
        register(db, dana, chat_lines(10), stratify_field="a b")


def test_failed_transaction_removes_the_files_it_stored(
    db: Database, dana: Actor, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("database went away")

    monkeypatch.setattr(audit, "record", broken)
    with pytest.raises(RuntimeError):
        register(db, dana, chat_lines(30))
    assert dataset_rows(db) == (0, 0) and stored_files() == []


def test_pii_flags_the_version_until_an_approver_accepts_it(db: Database, dana: Actor) -> None:
    outcome = register(db, dana, chat_lines(100, pii_every=10))
    version = outcome.version
    assert version.pii_status == "flagged" and version.pii_findings["email"]["count"] == 10
    assert "jane.doe@example.com" not in json.dumps(version.pii_findings)
    with db.read() as session, pytest.raises(PermissionDenied, match="flagged"):
        datasets.ensure_trainable(session, version.id or 0)
    with pytest.raises(PermissionDenied):
        datasets.except_pii(
            db, actor=dana, version_id=version.id or 0, reason="it is synthetic data"
        )
    priya = make_user(db, "priya", Role.APPROVER)
    with pytest.raises(ValidationError, match="at least 10 characters"):
        datasets.except_pii(db, actor=priya, version_id=version.id or 0, reason="ok")
    accepted = datasets.except_pii(
        db,
        actor=priya,
        version_id=version.id or 0,
        reason="Addresses are synthetic (ticket DPO-12)",
    )
    assert accepted.pii_status == "excepted" and accepted.pii_exception_by == "priya"
    with db.read() as session:
        assert datasets.ensure_trainable(session, version.id or 0).id == version.id
    with pytest.raises(Conflict, match="only a flagged one"):
        datasets.except_pii(db, actor=priya, version_id=version.id or 0, reason="again, no reason")


def test_roles_that_may_not_register_are_refused(db: Database, admin: Actor) -> None:
    for role in (Role.APPROVER, Role.MANAGER):
        actor = make_user(db, f"r-{role.value}".replace("_", ""), role)
        with pytest.raises(PermissionDenied):
            register(db, actor, chat_lines(5))
    with pytest.raises(PermissionDenied):
        register(db, admin, chat_lines(5))
    assert stored_files() == []


def test_duplicate_dataset_name_is_refused_before_reading(db: Database, dana: Actor) -> None:
    register(db, dana, chat_lines(5), name="tickets")
    with pytest.raises(Conflict, match="already exists"):
        register(db, dana, chat_lines(6), name="Tickets")
