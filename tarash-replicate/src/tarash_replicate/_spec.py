"""What discovery reads: the provider's name, key variable, API root and the lazily built tables.

Cheap on purpose: it imports tarash-core's registration records only; the model tables are built
by :mod:`tarash_replicate._families` the first time Tarash reads them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tarash.tarash_gateway.plugin import Capabilities, Lazy, ProviderSpec

PROVIDER = "replicate"
API_KEY_ENV = "REPLICATE_API_TOKEN"
DEFAULT_BASE_URL = "https://api.replicate.com"
#: Replicate deletes an API prediction's inputs, outputs, files and logs this long after it was
#: created (https://replicate.com/docs/topics/predictions/data-retention).
RETENTION = timedelta(hours=1)
#: Local media up to this size is sent inline as a data URI; Replicate's HTTP API reference says
#: "Use a data URL when you have a small file <= 256kb" and an HTTP URL above that.
DATA_URI_LIMIT = 256 * 1024
#: Larger local media goes through the files API (``POST /v1/files``), which takes up to 100 MB.
UPLOAD_LIMIT = 100 * 1000 * 1000


def _families() -> Any:
    from ._families import FAMILIES

    return tuple(family.model_family() for family in FAMILIES)


def _mappings() -> Any:
    from ._families import FAMILIES

    return {family.model: family.mapping() for family in FAMILIES}


SPEC = ProviderSpec(
    name=PROVIDER,
    modalities={"video", "image"},
    capabilities=Capabilities(cancel=True, progress_percent=True, logs=True, webhooks=True),
    models=Lazy(_families),
    field_mappings=Lazy(_mappings),
    api_key_env=API_KEY_ENV,
    base_url=DEFAULT_BASE_URL,
    auth_header="Authorization",
    auth_scheme="Bearer",
    description="Replicate: official and community video and image models (predictions API)",
)
