"""The records of the ``reconcile`` hook (re-exported by :mod:`tarash.tarash_gateway.plugin`): a
submission whose answer was lost, as the ledger recorded it, and what the provider's own records
say of it.

Only ``resume()`` calls that hook, so a generation never builds these: ``plugin`` loads this module
the first time one of the names is looked up.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

import attrs

from ._records import SubmittedJob
from .exceptions import ValidationError
from .plugin import Modality

__all__ = ["Reconciliation", "SubmissionIntent"]

Verdict = Literal["found", "not_found", "cannot_tell"]


@attrs.frozen(kw_only=True)
class SubmissionIntent:
    """A submission whose answer was lost, as the ledger recorded it before the submit was sent;
    passed to the ``reconcile`` hook.

    Attributes:
        key: the ledger key, which is also the ``CallContext.idempotency_key`` the submit carried.
        provider, model, modality: what was submitted.
        created_at: when the intent was recorded (UTC), just before the submit left. The submit
            reached the provider, if it did, between this and ``created_at + timeout``.
        timeout: the attempt's deadline in seconds (``config.timeout``).
        request: the request as the ledger keeps it: plain JSON, media bytes replaced by their
            size (``{"content_type", "size", "stored": False}``).
    """

    key: str
    provider: str
    model: str
    modality: Modality
    created_at: datetime
    timeout: float
    request: Mapping[str, Any] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class Reconciliation:
    """What ``reconcile`` found out about a submission whose answer was lost.

    Attributes:
        verdict: ``found`` (``job`` is the provider's job: core records it and collects it, with
            no new submit), ``not_found`` (the provider's own records say no job was created: a
            new submit would not pay twice), or ``cannot_tell`` (nothing conclusive: the job may
            exist; it stays ``unknown``).
        job: for ``found``: the job, as ``submit`` would have returned it.
        detail: what was checked, in a sentence (shown to the caller and kept in the ledger).
    """

    verdict: Verdict
    job: SubmittedJob | None = None
    detail: str = ""

    def __attrs_post_init__(self) -> None:
        if (self.verdict == "found") != (self.job is not None):
            raise ValidationError(
                "Reconciliation.job is given exactly when the verdict is 'found'",
                field="job",
                value=self.verdict,
            )
