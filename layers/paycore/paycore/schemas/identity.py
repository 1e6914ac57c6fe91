from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

Username = Annotated[
    str,
    Field(
        pattern=r"^[A-Za-z0-9_.-]{3,32}$",
        description="3 to 32 letters, digits, '_', '.' or '-'; case-insensitive (stored lower-case)",
        examples=["alice"],
    ),
]
# Loose on purpose where a username is only looked up: every value takes the same path to 401.
AnyUsername = Annotated[str, Field(min_length=1, max_length=64, examples=["alice"])]
Password = Annotated[
    str,
    Field(
        min_length=1,
        max_length=1024,
        description="At least 8 characters (up to 256); not a common password",
        examples=["correct horse battery staple"],
    ),
]
Email = Annotated[
    str,
    Field(pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$", max_length=254, examples=["alice@example.com"]),
]
PhoneNumber = Annotated[
    str,
    Field(pattern=r"^\+[1-9][0-9]{6,14}$", description="E.164, e.g. +8613800138000", examples=["+8613800138000"]),
]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterIn(_Strict):
    username: Username
    password: Password
    email: Email
    phone_number: PhoneNumber


class RegisterOut(BaseModel):
    user_id: str
    username: str
    status: Literal["pending_verification"]


class VerifyIn(_Strict):
    username: AnyUsername
    code: str = Field(pattern=r"^[0-9]{6}$", description="The 6-digit code sent by email and SMS")


class VerifyOut(BaseModel):
    status: Literal["active"]


class ResendIn(_Strict):
    username: AnyUsername


class ResendOut(BaseModel):
    message: str


class LoginIn(_Strict):
    username: AnyUsername
    password: Password


class RefreshIn(_Strict):
    refresh_token: str = Field(min_length=1, max_length=256)


class TokenOut(BaseModel):
    access_token: str = Field(description="EdDSA-signed JWT; send as `Authorization: Bearer <token>`")
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme name
    expires_in: int = Field(description="Seconds until the access token expires")
    refresh_token: str = Field(description="Opaque; works once (POST /auth/refresh returns the next one)")
    signing_key: str = Field(description="base64url (no padding) HMAC-SHA256 key for X-Signature, per session")


class Jwk(BaseModel):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    alg: Literal["EdDSA"]
    use: Literal["sig"]


class Jwks(BaseModel):
    keys: list[Jwk]
