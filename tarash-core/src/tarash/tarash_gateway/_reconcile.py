"""Reconciliation: what the provider's billing says it charged for the ledger's jobs, recorded
beside their estimates (``tarash costs reconcile``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ._cost import Cost
from ._engine import Attempt, run_flow
from ._pricing import billed_cost
from .exceptions import UnsupportedModalityError
from .models import VideoGenerationConfig

if TYPE_CHECKING:
    from ._gateway import Gateway
    from ._ledger import JobRecord

__all__ = ["BATCH", "reconcile_flow"]

#: Job ids asked per request (fal's billing events take 1 to 50 ``request_id``).
BATCH = 50


def reconcile_flow(
    gateway: Gateway,
    provider: str,
    records: Sequence[JobRecord],
    *,
    admin_key: str,
    base_url: str | None = None,
    provider_config: Mapping[str, Any] | None = None,
    timeout: float = 120.0,
) -> Any:
    """Flow: ``{job id: billed Cost}`` for ``records`` (jobs of ``provider`` with a job id), read
    with the provider's ``billed_costs`` hook through core's transport with ``admin_key``."""
    if not gateway.host.implements(provider, "billed_costs"):
        raise UnsupportedModalityError(provider, "billing", "its plugin reads no billing records")
    config = VideoGenerationConfig(
        provider=provider,
        model=provider,
        api_key=admin_key,
        base_url=base_url,
        timeout=timeout,
        provider_config=dict(provider_config or {}),
    )
    attempt = Attempt(
        gateway=gateway,
        config=config,
        request=None,
        modality="video",
        number=1,
        provider=provider,
        on_progress=None,
    )
    ids = [r.job_id for r in records if r.job_id]
    billed: dict[str, Cost] = {}
    for start in range(0, len(ids), BATCH):
        chunk = ids[start : start + BATCH]
        usage = yield from run_flow(
            attempt, "billed_costs", "result", config=config, job_ids=chunk, context=attempt.context()
        )
        for job_id, reported in dict(usage or {}).items():
            cost = billed_cost(None, reported)
            if cost is not None and job_id in chunk:
                billed[job_id] = cost
    return billed
