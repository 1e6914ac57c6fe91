"""The router's settings: defaults from RouterConfig, overrides from the environment, refusals."""

from __future__ import annotations

import pytest

from paycore.config import RouterSettings
from paycore.errors import ConfigurationError
from paycore.routing.policy import RouterConfig

pytestmark = pytest.mark.unit


def test_defaults_are_the_tuned_policy() -> None:
    settings = RouterSettings.from_env({"ROUTER_TABLE": "t"})
    defaults = RouterConfig()
    assert settings.half_life_seconds == defaults.half_life_seconds
    assert settings.epsilon == pytest.approx(defaults.epsilon)
    assert settings.objective == defaults.objective


def test_overrides() -> None:
    settings = RouterSettings.from_env(
        {
            "ROUTER_TABLE": "t",
            "ROUTER_HALF_LIFE_SECONDS": "1800",
            "ROUTER_EPSILON_PERMILLE": "50",
            "ROUTER_OBJECTIVE": "net_value",
        }
    )
    assert (settings.half_life_seconds, settings.epsilon, settings.objective) == (1800, 0.05, "net_value")


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "ROUTER_TABLE"),
        ({"ROUTER_TABLE": "t", "ROUTER_OBJECTIVE": "profit"}, "ROUTER_OBJECTIVE"),
        ({"ROUTER_TABLE": "t", "ROUTER_EPSILON_PERMILLE": "501"}, "ROUTER_EPSILON_PERMILLE"),
        ({"ROUTER_TABLE": "t", "ROUTER_HALF_LIFE_SECONDS": "30"}, "ROUTER_HALF_LIFE_SECONDS"),
        ({"ROUTER_TABLE": "t", "ROUTER_HALF_LIFE_SECONDS": "1h"}, "ROUTER_HALF_LIFE_SECONDS"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        RouterSettings.from_env(env)
