from __future__ import annotations

import pytest

from services.access import Actor
from services.config import Settings, get_settings
from services.db import Database
from tests.promotion_support import Cast, cast


@pytest.fixture
def people(db: Database, admin: Actor) -> Cast:
    return cast(db, admin)


@pytest.fixture
def settings() -> Settings:
    return get_settings()
