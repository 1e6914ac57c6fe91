import pytest

from paycore.config import DeliverySettings, IdentitySettings
from paycore.errors import ConfigurationError

pytestmark = pytest.mark.unit

_IDENTITY = {
    "USERS_TABLE": "u",
    "USER_CLAIMS_TABLE": "c",
    "SESSIONS_TABLE": "s",
    "REFRESH_TOKENS_TABLE": "r",
    "AUTH_THROTTLE_TABLE": "t",
    "JWT_KEYS_SECRET_ARN": "arn:jwt",
    "IDENTITY_HMAC_SECRET_ARN": "arn:hmac",
    "TOKEN_ISSUER": "urn:i",
    "TOKEN_AUDIENCE": "urn:a",
}


@pytest.mark.parametrize("missing", sorted(_IDENTITY))
def test_every_identity_variable_is_required(missing: str) -> None:
    env = {k: v for k, v in _IDENTITY.items() if k != missing}
    with pytest.raises(ConfigurationError, match=missing):
        IdentitySettings.from_env(env)


def test_secrets_are_cached_five_minutes_unless_configured() -> None:
    assert IdentitySettings.from_env(_IDENTITY).secrets_cache_seconds == 300
    assert IdentitySettings.from_env({**_IDENTITY, "SECRETS_CACHE_SECONDS": "0"}).secrets_cache_seconds == 0


def test_delivery_needs_a_sender_and_a_known_sms_type() -> None:
    assert DeliverySettings.from_env({"SES_SENDER_ADDRESS": "a@b.c", "SMS_TYPE": "Transactional"}).sms_type == (
        "Transactional"
    )
    with pytest.raises(ConfigurationError, match="SES_SENDER_ADDRESS"):
        DeliverySettings.from_env({"SMS_TYPE": "Transactional"})
    with pytest.raises(ConfigurationError, match="SMS_TYPE"):
        DeliverySettings.from_env({"SES_SENDER_ADDRESS": "a@b.c", "SMS_TYPE": "Urgent"})
