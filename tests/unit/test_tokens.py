"""Access tokens: their claims, and every token the verifier must refuse (no AWS: keys in memory)."""

import base64
import hashlib
import hmac
import json

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from paycore.identity import keys, tokens
from paycore.identity.keys import KeySet
from paycore.identity.tokens import InvalidToken

pytestmark = pytest.mark.unit

ISS = "urn:serverless-payments:test"
AUD = "urn:serverless-payments:test:api"
NOW = 1_795_000_000


def _key_set(secret: dict | None = None) -> tuple[dict, KeySet]:
    value, _ = keys.add_key(secret, activate=True)
    return value, KeySet.from_secret(value)


@pytest.fixture(scope="module")
def key_set() -> KeySet:
    return _key_set()[1]


def _token(key_set: KeySet, **overrides: object) -> str:
    return tokens.encode_access_token(
        key_set,
        issuer=str(overrides.get("iss", ISS)),
        audience=str(overrides.get("aud", AUD)),
        user_id="user-1",
        session_id="session-1",
        now=int(overrides.get("now", NOW)),  # type: ignore[arg-type]
    )


def _decode(token: str, key_set: KeySet, now: int = NOW + 1) -> tokens.AccessClaims:
    return tokens.decode_access_token(token, key_set, issuer=ISS, audience=AUD, now=now)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _claims(**overrides: object) -> dict:
    claims = {
        "iss": ISS,
        "aud": AUD,
        "sub": "user-1",
        "sid": "session-1",
        "iat": NOW,
        "exp": NOW + 900,
        "jti": "j1",
        "token_use": "access",
    }
    claims.update(overrides)
    return claims


def _reason(token: str, key_set: KeySet, now: int = NOW + 1) -> str:
    with pytest.raises(InvalidToken) as raised:
        _decode(token, key_set, now)
    return raised.value.reason


def test_an_access_token_carries_the_contract_claims(key_set: KeySet) -> None:
    token = _token(key_set)
    header = jwt.get_unverified_header(token)
    assert header == {"alg": "EdDSA", "kid": key_set.active_kid, "typ": "at+jwt"}
    claims = jwt.decode(
        token,
        key_set.public_keys[key_set.active_kid],
        algorithms=["EdDSA"],
        audience=AUD,
        options={"verify_exp": False},
    )
    assert set(claims) == {"iss", "aud", "sub", "sid", "iat", "exp", "jti", "token_use"}
    assert (claims["iss"], claims["aud"], claims["sub"], claims["sid"]) == (ISS, AUD, "user-1", "session-1")
    assert claims["iat"] == NOW
    assert claims["exp"] == NOW + 15 * 60
    assert claims["token_use"] == "access"
    assert _token(key_set) != token  # a fresh jti every time
    decoded = _decode(token, key_set)
    assert (decoded.user_id, decoded.session_id, decoded.expires_at) == ("user-1", "session-1", NOW + 900)


def test_alg_none_is_refused(key_set: KeySet) -> None:
    unsigned = f"{_b64({'alg': 'none', 'typ': 'at+jwt', 'kid': key_set.active_kid})}.{_b64(_claims())}."
    assert _reason(unsigned, key_set) == "algorithm"


@pytest.mark.parametrize("encoding", ["pem", "raw"])
def test_hs256_signed_with_the_public_key_is_refused(key_set: KeySet, encoding: str) -> None:
    # Key confusion: an attacker HMACs a token with the (public) verification key as the secret.
    public = key_set.public_keys[key_set.active_kid]
    secret = (
        public.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        if encoding == "pem"
        else public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    )
    signing_input = f"{_b64({'alg': 'HS256', 'typ': 'at+jwt', 'kid': key_set.active_kid})}.{_b64(_claims())}"
    signature = base64.urlsafe_b64encode(hmac.new(secret, signing_input.encode(), hashlib.sha256).digest())
    forged = f"{signing_input}.{signature.rstrip(b'=').decode()}"
    assert _reason(forged, key_set) == "algorithm"


def test_an_expired_token_is_refused_from_the_second_it_expires(key_set: KeySet) -> None:
    token = _token(key_set)
    assert _decode(token, key_set, now=NOW + 899).user_id == "user-1"
    assert _reason(token, key_set, now=NOW + 900) == "expired"


def test_a_token_from_the_future_is_refused(key_set: KeySet) -> None:
    assert _reason(_token(key_set, now=NOW + 120), key_set, now=NOW) == "not_yet_valid"


def test_a_wrong_audience_is_refused(key_set: KeySet) -> None:
    assert _reason(_token(key_set, aud="urn:someone-else"), key_set) == "audience"


def test_a_wrong_issuer_is_refused(key_set: KeySet) -> None:
    assert _reason(_token(key_set, iss="urn:serverless-payments:prod"), key_set) == "issuer"


def test_an_opaque_refresh_token_is_not_an_access_token(key_set: KeySet) -> None:
    import secrets

    assert _reason(secrets.token_urlsafe(32), key_set) == "malformed"


@pytest.mark.parametrize(
    ("header_typ", "token_use", "reason"),
    [("at+jwt", "refresh", "token_type"), ("JWT", "access", "token_type"), ("at+jwt", None, "missing_claim")],
)
def test_a_correctly_signed_token_of_another_type_is_refused(
    key_set: KeySet, header_typ: str, token_use: str | None, reason: str
) -> None:
    claims = _claims(token_use=token_use) if token_use else {k: v for k, v in _claims().items() if k != "token_use"}
    token = jwt.encode(
        claims,
        key_set.private_keys[key_set.active_kid],
        algorithm="EdDSA",
        headers={"kid": key_set.active_kid, "typ": header_typ},
    )
    assert _reason(token, key_set) == reason


def test_an_unknown_kid_is_refused(key_set: KeySet) -> None:
    _, other = _key_set()
    assert _reason(_token(other), key_set) == "unknown_kid"


def test_a_known_kid_with_another_keys_signature_is_refused(key_set: KeySet) -> None:
    _, other = _key_set()
    token = jwt.encode(
        _claims(),
        other.private_keys[other.active_kid],
        algorithm="EdDSA",
        headers={"kid": key_set.active_kid, "typ": "at+jwt"},
    )
    assert _reason(token, key_set) == "signature"


def test_a_tampered_payload_is_refused(key_set: KeySet) -> None:
    header, _, signature = _token(key_set).split(".")
    tampered = f"{header}.{_b64(_claims(sub='someone-else'))}.{signature}"
    assert _reason(tampered, key_set) == "signature"


def test_a_missing_claim_is_refused(key_set: KeySet) -> None:
    claims = {k: v for k, v in _claims().items() if k != "sid"}
    token = jwt.encode(
        claims,
        key_set.private_keys[key_set.active_kid],
        algorithm="EdDSA",
        headers={"kid": key_set.active_kid, "typ": "at+jwt"},
    )
    assert _reason(token, key_set) == "missing_claim"


def test_during_rotation_both_kids_verify_and_a_retired_kid_does_not() -> None:
    first_value, first = _key_set()
    old_token = _token(first)
    # add: published, not yet signing
    added, new_kid = keys.add_key(first_value)
    overlap = KeySet.from_secret(added)
    assert overlap.active_kid == first.active_kid
    assert set(overlap.public_keys) == {first.active_kid, new_kid}
    # activate: new tokens carry the new kid, old tokens still verify
    switched = KeySet.from_secret(keys.activate_key(added, new_kid))
    new_token = _token(switched)
    assert jwt.get_unverified_header(new_token)["kid"] == new_kid
    assert _decode(old_token, switched).user_id == _decode(new_token, switched).user_id == "user-1"
    # retire: the old kid is gone
    retired = KeySet.from_secret(keys.retire_key(keys.activate_key(added, new_kid), first.active_kid))
    assert _reason(old_token, retired) == "unknown_kid"
    assert _decode(new_token, retired).user_id == "user-1"
