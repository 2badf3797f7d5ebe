"""Credentials read from secrets: whitespace, control characters and messages without values."""

from __future__ import annotations

import pytest

from ti_anomali.runtime import credential_field
from ti_anomali.settings import SettingsError


def test_trailing_newline_stripped_from_header_credential() -> None:
    assert credential_field({"api_key": "key-123\n"}, "ti/threatstream", "api_key") == "key-123"


@pytest.mark.parametrize("value", ["key\r\n123", "key\n123", "key\x00123", "key\x7f"])
def test_control_character_rejected_without_value(value: str) -> None:
    with pytest.raises(SettingsError) as failure:
        credential_field({"api_key": value}, "ti/threatstream", "api_key")

    assert "control character" in str(failure.value)
    assert value.strip() not in str(failure.value)


@pytest.mark.parametrize("secret", [{}, {"api_key": ""}, {"api_key": "   "}, {"api_key": 7}])
def test_missing_or_empty_credential_rejected(secret: dict[str, object]) -> None:
    with pytest.raises(SettingsError, match="non-empty 'api_key'"):
        credential_field(secret, "ti/threatstream", "api_key")


def test_password_taken_as_it_is() -> None:
    assert credential_field({"password": " p\nw "}, "ti/engine", "password", header=False) == " p\nw "
