"""Deleting an export on S3: a missing object is already gone, a refused one is an
error (never marked deleted while it still exists)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from behavior_lake.governance.export_ledger import remove_file
from tests.conftest import lake_test_settings


def _client(code: str, status: int):
    client = boto3.client(
        "s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    stub = Stubber(client)
    stub.add_client_error("head_object", service_error_code=code, http_status_code=status)
    stub.activate()
    return client


def test_a_missing_object_is_already_gone() -> None:
    s = lake_test_settings("x")
    assert remove_file(s, "s3://b/subject-a.zip", _client("404", 404)) is False


def test_a_refused_object_is_an_error() -> None:
    s = lake_test_settings("x")
    with pytest.raises(Exception, match="AccessDenied"):
        remove_file(s, "s3://b/subject-a.zip", _client("AccessDenied", 403))


def test_a_local_file_is_deleted_once(tmp_path) -> None:
    s = lake_test_settings("x")
    f = tmp_path / "subject-b.zip"
    f.write_bytes(b"zip")
    assert remove_file(s, str(f)) is True and not f.exists()
    assert remove_file(s, str(f)) is False
