"""``tarash fal add-model ENDPOINT_ID [--from FILE]``: derive a model's mapping from its schema.

The command reads the model's published OpenAPI (fetched as a flow that core's transport sends,
or ``--from FILE`` offline), derives the mapping with :func:`tarash_fal._schema.derive_spec`,
prints it as JSON and saves it in the user's model table, ``<data dir>/fal/models.json``
(``$TARASH_HOME`` if set, else ``$XDG_DATA_HOME/tarash`` or ``~/.local/share/tarash``)::

    {"version": 1, "models": {"<endpoint id>": {<spec>}, ...}}
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tarash.tarash_gateway.exceptions import TarashException, ValidationError
from tarash.tarash_gateway.plugin import Request
from tarash.tarash_gateway.utils import data_dir

from ._schema import ModelSpec, derive_spec

if TYPE_CHECKING:
    import argparse

    from tarash.tarash_gateway.plugin import Flow

__all__ = [
    "OPENAPI_URL",
    "add_commands",
    "add_model",
    "fetch_schema_flow",
    "load_user_models",
    "parse_user_models",
    "user_models_path",
]

OPENAPI_URL = "https://fal.ai/api/openapi/queue/openapi.json"
TABLE_VERSION = 1


def user_models_path() -> Path:
    """The user's fal model table file."""
    return data_dir() / "fal" / "models.json"


def load_user_models(path: Path | None = None) -> dict[str, ModelSpec]:
    """Endpoint id -> spec from the user's table (empty when there is none)."""
    target = path or user_models_path()
    try:
        text = target.read_bytes()
    except FileNotFoundError:
        return {}
    return parse_user_models(text, target)


def parse_user_models(text: bytes, target: Path) -> dict[str, ModelSpec]:
    """Endpoint id -> spec from the bytes of the user's table (read from ``target``)."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ValidationError(f"{target} is not a fal model table: {exc}", field="models") from None
    models = data.get("models") if isinstance(data, dict) else None
    if not isinstance(models, dict):
        raise ValidationError(f"{target} is not a fal model table (no 'models' object)", field="models")
    return models


def fetch_schema_flow(endpoint_id: str, url: str = OPENAPI_URL) -> Flow[Mapping[str, Any]]:
    """Fetch a model's published OpenAPI (public: sent without the key)."""
    answer = yield Request(method="GET", url=url, params={"endpoint_id": endpoint_id}, auth=False)
    try:
        document = answer.json()
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise ValidationError(f"fal answered no OpenAPI document for {endpoint_id!r}", field="endpoint_id")
    return document


def add_model(endpoint_id: str, document: Mapping[str, Any], path: Path | None = None) -> ModelSpec:
    """Derive ``endpoint_id``'s spec from ``document`` and save it in the user's table (replacing
    an earlier one); returns the spec."""
    spec = derive_spec(document, endpoint_id)
    target = path or user_models_path()
    models = load_user_models(target)
    models[endpoint_id] = spec
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"version": TABLE_VERSION, "models": dict(sorted(models.items()))}, indent=2) + "\n"
    handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=".models-", suffix=".json")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return spec


def add_commands(subparsers: Any) -> None:
    """Add ``tarash fal add-model``; the schema fetch goes through tarash-core's transport."""
    import argparse  # lazy: a generation imports this module for the user's model table, not the CLI

    fal = subparsers.add_parser("fal", help="fal.ai tools")
    commands = fal.add_subparsers(dest="fal_command", required=True)
    add = commands.add_parser(
        "add-model",
        help="derive a fal model's mapping from its published schema and save it",
        description="Fetch ENDPOINT_ID's OpenAPI from fal (or read --from FILE), derive which fal field "
        "each unified field goes to, print it and save it to the user's fal model table.",
    )
    add.add_argument("endpoint_id", metavar="ENDPOINT_ID", help="e.g. fal-ai/ltx-2/text-to-video")
    add.add_argument(
        "--from", dest="source", metavar="FILE", help="read the OpenAPI JSON from FILE (offline)"
    )
    add.add_argument("--ca-bundle", metavar="PEM", help="trust this CA for the fetch (a proxy)")
    add.add_argument("--url", default=OPENAPI_URL, help=argparse.SUPPRESS)
    add.set_defaults(func=_run_add_model)


def _run_add_model(args: argparse.Namespace) -> int:
    from tarash.tarash_gateway import default_gateway

    try:
        if args.source:
            try:
                document = json.loads(Path(args.source).read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ValidationError(f"cannot read {args.source}: {exc}", field="from") from None
        else:
            fetch = fetch_schema_flow(args.endpoint_id, args.url)
            document = default_gateway().run_flow(fetch, label="fal", ca_bundle=args.ca_bundle)
        spec = add_model(args.endpoint_id, document)
    except TarashException as exc:
        print(f"tarash fal add-model: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(spec, indent=2))
    print(f"saved to {user_models_path()}", file=sys.stderr)
    return 0
