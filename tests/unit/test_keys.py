"""Signing keys: kids, the JWKS, detached signatures, and the pure edits of the key secrets."""

import base64
import json

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from paycore.identity import derived, keys
from paycore.identity.keys import BadSignature, KeySet

pytestmark = pytest.mark.unit


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_kid_is_the_rfc_7638_thumbprint() -> None:
    # RFC 8037 appendix A.3: the thumbprint of the example Ed25519 public key.
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert keys.thumbprint(jwk) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_the_jwks_publishes_every_key_and_nothing_private() -> None:
    value, first = keys.add_key(None)
    value, second = keys.add_key(value)
    published = KeySet.from_secret(value).jwks()["keys"]
    assert [k["kid"] for k in published] == [first, second]
    for jwk in published:
        assert set(jwk) == {"kty", "crv", "x", "kid", "alg", "use"}
        assert (jwk["kty"], jwk["crv"], jwk["alg"], jwk["use"]) == ("OKP", "Ed25519", "EdDSA", "sig")
        assert keys.thumbprint(jwk) == jwk["kid"]


def test_a_detached_signature_verifies_with_the_published_key_alone() -> None:
    value, _ = keys.add_key(None)
    key_set = KeySet.from_secret(value)
    payload = json.dumps({"amount": 1000, "currency": "CNY", "order_id": "o-1"}, sort_keys=True).encode()
    signature = key_set.sign_detached(payload)

    protected, empty, sig = signature.split(".")
    assert empty == ""  # the payload is detached
    header = json.loads(_b64decode(protected))
    assert header == {"alg": "EdDSA", "b64": False, "crit": ["b64"], "kid": key_set.active_kid}
    # What a client does with the JWKS: Ed25519 over "<protected>.<raw payload>" (RFC 7797).
    jwk = next(k for k in key_set.jwks()["keys"] if k["kid"] == header["kid"])
    public = Ed25519PublicKey.from_public_bytes(_b64decode(jwk["x"]))
    public.verify(_b64decode(sig), protected.encode() + b"." + payload)
    with pytest.raises(InvalidSignature):
        public.verify(_b64decode(sig), protected.encode() + b"." + payload + b" ")

    assert key_set.verify_detached(signature, payload)["kid"] == key_set.active_kid


@pytest.mark.parametrize("change", ["payload", "kid", "garbage"])
def test_verify_detached_refuses_what_does_not_verify(change: str) -> None:
    value, _ = keys.add_key(None)
    key_set = KeySet.from_secret(value)
    payload = b'{"order_id":"o-1"}'
    signature = key_set.sign_detached(payload)
    if change == "payload":
        args = (signature, b'{"order_id":"o-2"}')
    elif change == "kid":
        other_set = KeySet.from_secret(keys.add_key(None)[0])  # a key the verifier does not know
        args = (other_set.sign_detached(payload), payload)
    else:
        args = ("not-a-jws", payload)
    with pytest.raises(BadSignature):
        key_set.verify_detached(*args)


def test_key_edits_keep_one_active_key() -> None:
    value, first = keys.add_key(None)
    assert value["active"] == first  # the first key signs
    value, second = keys.add_key(value)
    assert value["active"] == first  # an added key only publishes
    value = keys.activate_key(value, second)
    with pytest.raises(ValueError, match="active"):
        keys.retire_key(value, second)
    value = keys.retire_key(value, first)
    assert list(value["keys"]) == [second]
    with pytest.raises(ValueError, match="no key"):
        keys.activate_key(value, first)


def test_derived_keys_are_32_bytes_and_separated_by_purpose_context_and_version() -> None:
    secret = derived.new_secret()
    root = secret["v1"]
    assert len(root) == derived.VALUE_LENGTH
    assert root.isalnum()
    a = derived.derive(root, derived.SESSION_SIGNING_KEY, b"session-1")
    assert len(a) == 32
    assert a == derived.derive(root, derived.SESSION_SIGNING_KEY, b"session-1")  # deterministic
    assert a != derived.derive(root, derived.SESSION_SIGNING_KEY, b"session-2")
    assert a != derived.derive(root, derived.VERIFICATION_CODE_PEPPER, b"session-1")
    rotated, version = derived.add_version(secret)
    assert (version, rotated["current"]) == ("v2", "v2")
    assert rotated["v1"] == root
    assert a != derived.derive(rotated["v2"], derived.SESSION_SIGNING_KEY, b"session-1")
    with pytest.raises(ValueError, match="current"):
        derived.remove_version(rotated, "v2")
    assert set(derived.remove_version(rotated, "v1")) == {"current", "v2"}
