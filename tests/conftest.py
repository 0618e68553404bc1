"""Shared fixtures. Services (PostgreSQL, Redis, MongoDB) are found through
TRIALBOOK_TEST_{POSTGRES,REDIS,MONGO}_URL; scripts/test.sh starts them. With no URL a test
that needs one is skipped with the reason, unless TRIALBOOK_TEST_REQUIRE_ALL=1 (set under CI),
which turns the skip into a failure."""

from __future__ import annotations

import os
import pathlib

import pytest

import trialbook

REQUIRE_ALL = os.environ.get("TRIALBOOK_TEST_REQUIRE_ALL") == "1"


def need(condition: bool, reason: str) -> None:
    """Skip (or, when every service is required, fail) unless ``condition``."""
    if condition:
        return
    if REQUIRE_ALL:
        pytest.fail(f"required under CI but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture
def store_dir(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "store"


@pytest.fixture
def session(store_dir: pathlib.Path) -> trialbook.Session:
    session = trialbook.create_session(store_dir)
    yield session
    session.close()
