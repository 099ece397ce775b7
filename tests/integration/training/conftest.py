"""Fixtures shared by the training integration tests."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

import pytest
from moto.bedrock.responses import BedrockResponse


@pytest.fixture
def moto_takes_job_arns(monkeypatch: pytest.MonkeyPatch) -> None:
    """AWS takes a job's ARN wherever it takes its name; moto 5.2.5 looks the job up by the
    percent-encoded path segment, so an ARN is "not found". Decode the path as AWS does (moto's
    ARNs end with the job name)."""
    for action in ("get_model_customization_job", "stop_model_customization_job"):
        original = getattr(BedrockResponse, action)

        def decoded(self: BedrockResponse, _original: Any = original) -> Any:
            self.path = unquote(self.path)
            return _original(self)

        monkeypatch.setattr(BedrockResponse, action, decoded)
