"""Payment provider adapters behind one interface (:class:`paycore.providers.base.PaymentProvider`).

The order logic never knows which provider it talks to: it asks :func:`get_provider` for the
adapter named by the channel's ``provider`` field. Adapters import their own dependencies
lazily, so a function that never talks to Stripe never pays for importing it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from paycore.errors import NotFound

if TYPE_CHECKING:  # the interface loads with the first adapter; the daily report only lists names
    from paycore.providers.base import PaymentProvider

# provider name -> "module:factory"; the factory takes no arguments and returns an adapter.
_REGISTRY: dict[str, str] = {}
_INSTANCES: dict[str, PaymentProvider] = {}


def register(name: str, target: str) -> None:
    """Declare that provider ``name`` is built by ``target`` ("paycore.providers.x:factory")."""
    _REGISTRY[name] = target


def get_provider(name: str) -> PaymentProvider:
    """The adapter for ``name`` (one instance per container); unknown names are a 404."""
    if name not in _INSTANCES:
        target = _REGISTRY.get(name)
        if target is None:
            raise NotFound(f"unknown payment provider {name!r}", code="unknown_provider")
        module_name, factory_name = target.split(":", 1)
        import importlib

        factory: Callable[[], PaymentProvider] = getattr(importlib.import_module(module_name), factory_name)
        _INSTANCES[name] = factory()
    return _INSTANCES[name]


def known_providers() -> list[str]:
    return sorted(_REGISTRY)


def reset_providers() -> None:
    _INSTANCES.clear()


# The real providers (docs/providers.md). Each module imports its own heavy dependencies lazily.
register("stripe", "paycore.providers.stripe_provider:factory")
register("alipay", "paycore.providers.alipay_provider:factory")
register("wechatpay", "paycore.providers.wechatpay_provider:factory")
# The simulated provider (docs/orders.md).
register("sandbox", "paycore.providers.sandbox:factory")
