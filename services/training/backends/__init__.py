"""One implementation of :class:`~services.training.backends.base.JobBackend` per place a job
can run. :func:`backend_for` imports a backend only when it is asked for."""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.training import Backend

if TYPE_CHECKING:
    from services.config import Settings
    from services.training.backends.base import JobBackend


def backend_for(name: Backend | str, settings: Settings) -> JobBackend:
    backend = Backend(name)
    if backend is Backend.LOCAL:
        from services.training.backends.local import LocalBackend

        return LocalBackend(settings)
    if backend is Backend.SAGEMAKER:
        from services.training.backends.sagemaker import SageMakerBackend

        return SageMakerBackend(settings)
    from services.training.backends.bedrock import BedrockBackend

    return BedrockBackend(settings)
