import pytest

from paycore.config import ChannelSettings, reset_settings
from paycore.errors import ConfigurationError

pytestmark = pytest.mark.unit


def test_missing_table_name_names_the_variable() -> None:
    with pytest.raises(ConfigurationError, match="CHANNELS_TABLE"):
        ChannelSettings.from_env({})


def test_non_integer_cache_seconds_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="CHANNELS_CACHE_SECONDS"):
        ChannelSettings.from_env({"CHANNELS_TABLE": "t", "CHANNELS_CACHE_SECONDS": "soon"})


def test_settings_are_read_at_call_time_not_import(monkeypatch: pytest.MonkeyPatch) -> None:
    from paycore.config import channel_settings

    monkeypatch.setenv("CHANNELS_TABLE", "first")
    reset_settings()
    assert channel_settings().table == "first"
    monkeypatch.setenv("CHANNELS_TABLE", "second")
    reset_settings()
    assert channel_settings().table == "second"
