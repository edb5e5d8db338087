"""Estimates before submit: what a generation would cost, priced exactly as the engine prices
an attempt, without submitting anything."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._engine import check_request, modality_of, plan_attempts, resolve_credentials, run_flow
from ._pricing import price_attempt
from .exceptions import MissingCredentialsError, UnsupportedModalityError

if TYPE_CHECKING:
    from ._gateway import Gateway

__all__ = ["estimate_flow"]


def estimate_flow(gateway: Gateway, config: Any, request: Any, *, price_api: bool = True) -> Any:
    """Flow: the expected cost of ``request`` on ``config`` (its first config of the chain), as
    the generation would price it before submit, without submitting anything; None when unknown.

    The request is checked first (a :class:`ValidationError` as the generation would raise); the
    provider's price API is asked only when a key is at hand and ``price_api`` is set (else
    nothing at all is sent)."""
    modality = modality_of(config)
    _chain, attempts = plan_attempts(gateway, config, request, modality, None)
    attempt = next(attempts)
    if modality not in attempt.spec.modalities:
        raise UnsupportedModalityError(attempt.provider, modality, attempt.spec.unsupported.get(modality))
    check_request(attempt)
    try:
        if price_api:
            resolve_credentials(attempt)
    except MissingCredentialsError:
        pass
    attempt.credentials_resolved = True
    return (yield from price_attempt(attempt, run_flow))
