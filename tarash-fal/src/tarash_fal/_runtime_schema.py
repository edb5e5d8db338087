"""Any fal model, at runtime, from its published schema.

For a model id that no table maps (neither the built-in registry nor ``tarash fal add-model``'s
user table), the submit flow first reads the model's OpenAPI from
``https://fal.ai/api/openapi/queue/openapi.json?endpoint_id=<id>`` (public, no key; or
``provider_config["schema_url"]``) through core's transport, within :data:`SCHEMA_TIMEOUT`
seconds. The mapping is derived from it exactly as ``tarash fal add-model`` derives it
(:func:`tarash_fal._schema.derive_spec`), so unified values are checked against the schema's
enums before the submit; then the final payload is checked:

* a field the schema lists as required and the payload lacks: refused (``ValidationError`` naming
  it; fal would answer 422), nothing else sent;
* an ``extra_params`` value outside the field's enum, or a field the schema does not declare:
  a warning, and sent as given (fal's published enums lag behind what its models accept).

A schema that cannot be had (offline, a timeout, a 404, a document without an input schema)
gives today's generic mapping, with a warning. Documents are cached in-process per URL and model
for :data:`SCHEMA_TTL` seconds, failures for :data:`FAILURE_TTL`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import attrs

from tarash.tarash_gateway.exceptions import HTTPConnectionError, HTTPError, ValidationError
from tarash.tarash_gateway.plugin import Request
from tarash.tarash_gateway.utils import get_logger

from ._schema import ModelSpec, derive_spec, family_from_spec, input_schema

if TYPE_CHECKING:
    from tarash.tarash_gateway.plugin import Flow

__all__ = [
    "FAILURE_TTL",
    "SCHEMAS",
    "SCHEMA_TIMEOUT",
    "SCHEMA_TTL",
    "SCHEMA_URL",
    "RuntimeSchema",
    "SchemaCache",
    "check_payload",
    "runtime_schema",
    "schema_url",
]

SCHEMA_URL = "https://fal.ai/api/openapi/queue/openapi.json"
#: Seconds the schema read may take (the generation's deadline still applies).
SCHEMA_TIMEOUT = 10.0
SCHEMA_TTL = 86400.0
FAILURE_TTL = 600.0
log = get_logger("tarash.fal")


@attrs.frozen
class RuntimeSchema:
    """A model's derived spec and what the payload check needs from its input schema."""

    spec: ModelSpec
    required: tuple[str, ...]
    enums: Mapping[str, tuple[Any, ...]]
    properties: frozenset[str]

    @property
    def mapping(self) -> Any:
        return family_from_spec(self.spec).mapping


class SchemaCache:
    """(schema URL, model) -> RuntimeSchema or None (a failure), each until its expiry."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], tuple[RuntimeSchema | None, float]] = {}
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str]) -> tuple[RuntimeSchema | None] | None:
        """``(entry,)`` when cached (entry None for a cached failure), else None."""
        with self._lock:
            found = self._entries.get(key)
            if found is None or found[1] <= time.monotonic():
                self._entries.pop(key, None)
                return None
            return (found[0],)

    def put(self, key: tuple[str, str], entry: RuntimeSchema | None) -> None:
        ttl = SCHEMA_TTL if entry is not None else FAILURE_TTL
        with self._lock:
            self._entries[key] = (entry, time.monotonic() + ttl)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


#: The process's schema cache.
SCHEMAS = SchemaCache()


def schema_url(provider_config: Mapping[str, Any]) -> str:
    """``provider_config["schema_url"]`` checked, else fal's."""
    url = provider_config.get("schema_url", SCHEMA_URL)
    if (
        not isinstance(url, str)
        or urlsplit(url).scheme not in ("http", "https")
        or not urlsplit(url).hostname
    ):
        raise ValidationError(
            f"provider_config.schema_url must be an http(s) URL, got {url!r}",
            field="provider_config.schema_url",
            value=url,
            provider="fal",
        )
    return url


def _enums(document: Mapping[str, Any], properties: Mapping[str, Any]) -> dict[str, tuple[Any, ...]]:
    from ._schema import _enum

    found = {}
    for name, node in properties.items():
        values = _enum(document, node)
        if values:
            found[name] = tuple(values)
    return found


def read_schema(document: Any, model: str) -> RuntimeSchema:
    """The runtime schema of ``model`` from its OpenAPI ``document`` (ValidationError if none)."""
    if not isinstance(document, Mapping):
        raise ValidationError("the answer is not an OpenAPI document", field="schema")
    spec = derive_spec(document, model)
    schema = input_schema(document, model)
    properties: Mapping[str, Any] = schema["properties"]
    return RuntimeSchema(
        spec=spec,
        required=tuple(spec["required"]),
        enums=_enums(document, properties),
        properties=frozenset(properties),
    )


def runtime_schema(model: str, url: str) -> Flow[RuntimeSchema | None]:
    """``model``'s schema (cached), or None with a warning when it cannot be had."""
    cached = SCHEMAS.get((url, model))
    if cached is not None:
        return cached[0]
    try:
        response = yield Request(
            method="GET", url=url, params={"endpoint_id": model}, auth=False, timeout=SCHEMA_TIMEOUT
        )
        try:
            document = response.json()
        except ValueError:
            document = None
        found: RuntimeSchema | None = read_schema(document, model)
    except (HTTPError, HTTPConnectionError, ValidationError) as exc:
        log.warning(
            "fal model %s is in no model table and its schema could not be read (%s): "
            "using the generic mapping",
            model,
            exc.message,
        )
        found = None
    SCHEMAS.put((url, model), found)
    return found


def check_payload(model: str, schema: RuntimeSchema, payload: Mapping[str, Any]) -> None:
    """Refuse a payload without a required field; warn on values or fields the schema does not
    list (sent as given)."""
    missing = [name for name in schema.required if payload.get(name) is None]
    if missing:
        raise ValidationError(
            f"{model} requires {', '.join(missing)} (its published schema); set "
            f"{'it' if len(missing) == 1 else 'them'} through the request or extra_params",
            field=missing[0],
            value=None,
            allowed=tuple(missing),
            provider="fal",
            model=model,
        )
    for name, value in payload.items():
        if name not in schema.properties:
            log.warning("%s: %r is not in %s's published schema; sent as given", model, name, model)
        elif name in schema.enums and not isinstance(value, (list, dict)) and value not in schema.enums[name]:
            log.warning(
                "%s: %s=%r is not among its published values %s; sent as given",
                model,
                name,
                value,
                list(schema.enums[name]),
            )
