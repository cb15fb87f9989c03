"""Under CI=true a missing shared input fails the test instead of skipping it (a skip would hide it)."""

from __future__ import annotations

import pytest

from .conftest import missing_input


def test_missing_input_skips_locally(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception):
        missing_input("fixture absent")


def test_missing_input_fails_under_ci(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI=true requires it"):
        missing_input("fixture absent")
