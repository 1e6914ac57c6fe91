"""Data the local stack puts into moto after creating the template's resources.

``SEEDERS`` is the list of what runs, in order. A seeder is a no-argument callable that returns a
line for the start-up summary; it runs with the stage's Globals environment from template.yaml
(``CHANNELS_TABLE`` and the other names, ``AWS_ENDPOINT_URL`` at the moto server), so it writes
through paycore's own data layer or ``paycore.aws.client`` exactly as the functions do. Add one
here for data a stage needs before it works (keys in a secret, for instance).

SES refuses to send from an unverified address (moto as well), so every sender address that
the functions' environment names (a variable such as ``SES_SENDER`` / ``EMAIL_FROM`` /
``SENDER_EMAIL`` whose value holds an ``@``) is verified in moto, as an operator would verify
it once in a real account.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from email.utils import parseaddr

from infra.local.template import FunctionSpec

_SENDER_VARIABLE = re.compile(r"(^|_)(SENDER|FROM)(_|$)")


def _seed_channels() -> str:
    from infra.seed.channels import seed_channels

    return f"{seed_channels()} channels (infra/seed/channels.json)"


def _seed_identity_keys() -> str:
    from infra.local.secrets import seed_identity_keys

    return seed_identity_keys()


SEEDERS: list[tuple[str, Callable[[], str]]] = [
    ("channels", _seed_channels),
    ("identity keys", _seed_identity_keys),
]


def sender_addresses(specs: Iterable[FunctionSpec]) -> list[str]:
    """Email addresses that some function sends from, by the name of the variable that holds them."""
    found: list[str] = []
    for spec in specs:
        for name, value in spec.environment.items():
            if _SENDER_VARIABLE.search(name) and "@" in value:
                address = parseaddr(value)[1]
                if address and address not in found:
                    found.append(address)
    return found


def verify_senders(ses: object, addresses: Iterable[str]) -> list[str]:
    """Verify each address with ``ses`` (a boto3 SES v1 client); moto marks them verified at once."""
    verified = []
    for address in addresses:
        ses.verify_email_identity(EmailAddress=address)  # type: ignore[attr-defined]
        verified.append(address)
    return verified


def run_seeders(seeders: Iterable[tuple[str, Callable[[], str]]] = SEEDERS) -> Mapping[str, str]:
    """Run each seeder (the caller sets the environment); returns name -> summary line."""
    return {name: seeder() for name, seeder in seeders}
