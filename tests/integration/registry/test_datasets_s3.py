"""Registering a dataset version from ``s3://`` against moto, with the failures people meet:
a missing object, a bucket without access, a malformed URI."""

from __future__ import annotations

import pytest
from botocore.stub import Stubber

from models.dataset import DatasetCreate
from models.user import Role
from services import aws
from services.access import Actor
from services.config import Settings
from services.db import Database
from services.errors import ExternalServiceError, ValidationError
from services.registry import datasets
from services.registry.dataset_files import DatasetSource
from services.registry.formats import DatasetFormat
from tests.conftest import make_user
from tests.unit.registry.test_datasets import chat_lines, dataset_rows, stored_files


def register(db: Database, settings: Settings, actor: Actor, uri: str) -> datasets.Registration:
    return datasets.register_version(
        db,
        settings,
        actor=actor,
        source=DatasetSource.s3(uri),
        fmt=DatasetFormat("chat"),
        new_dataset=DatasetCreate(name="from-s3"),
    )


def test_object_in_s3_is_read_checked_and_registered(
    db: Database, admin: Actor, aws_settings: Settings
) -> None:
    dana = make_user(db, "dana", Role.DATA_SCIENTIST)
    s3 = aws.client("s3", aws_settings)
    s3.create_bucket(Bucket="training-data")
    s3.put_object(Bucket="training-data", Key="care/tickets.jsonl", Body=chat_lines(300))
    outcome = register(db, aws_settings, dana, "s3://training-data/care/tickets.jsonl")
    assert outcome.version.record_count == 300
    assert outcome.version.source_uri == "s3://training-data/care/tickets.jsonl"


def test_missing_object_says_not_found_and_writes_nothing(
    db: Database, admin: Actor, aws_settings: Settings
) -> None:
    dana = make_user(db, "dana", Role.DATA_SCIENTIST)
    aws.client("s3", aws_settings).create_bucket(Bucket="training-data")
    with pytest.raises(
        ExternalServiceError, match=r"Could not read s3://training-data/nope\.jsonl: not found"
    ):
        register(db, aws_settings, dana, "s3://training-data/nope.jsonl")
    assert dataset_rows(db) == (0, 0) and stored_files() == []


def test_bucket_without_access_keeps_the_aws_code(
    db: Database, admin: Actor, aws_settings: Settings
) -> None:
    dana = make_user(db, "dana", Role.DATA_SCIENTIST)
    s3 = aws.client("s3", aws_settings)
    with Stubber(s3) as stubber:
        stubber.add_client_error("head_object", "AccessDenied", "Access Denied", 403)
        with pytest.raises(ExternalServiceError, match="access denied") as caught:
            register(db, aws_settings, dana, "s3://locked-bucket/data.jsonl")
    assert caught.value.code == "AccessDenied"
    assert dataset_rows(db) == (0, 0)


@pytest.mark.parametrize("uri", ["s3://", "s3://bucket-only", "https://example.com/x.jsonl"])
def test_malformed_uri_is_refused(uri: str) -> None:
    with pytest.raises(ValidationError, match="s3://bucket/path"):
        DatasetSource.s3(uri)
