"""``tarash generate video|image``: build the request, run it with progress, save the result."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

from .._api import generate_image, generate_video, get_provider
from .._cost import Cost
from .._download import download, save_bytes
from .._gateway import default_gateway
from .._plain import unstructure
from .._plugins import ProviderInfo
from .._redact import redact_text
from .._validators import IMAGE_ROLES
from ..exceptions import TarashException, ValidationError
from ..models import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    ImageGenerationResponse,
    ImageType,
    MediaContent,
    VideoGenerationConfig,
    VideoGenerationRequest,
    VideoGenerationResponse,
)
from ._errors import OutputError, UsageError
from ._parser import EXIT_OK
from ._progress import Progress, is_live

__all__ = [
    "DEFAULT_MODELS",
    "MAX_INPUT_IMAGE_BYTES",
    "MOCK_DELAY_ENV",
    "Config",
    "Response",
    "build_config",
    "build_request",
    "check_destination",
    "describe_cost",
    "dry_run",
    "input_image",
    "mock_provider_config",
    "result_json",
    "run",
    "save_outputs",
]

#: The model used when ``--model`` is not given, per (provider, modality).
DEFAULT_MODELS = {("mock", "video"): "mock", ("mock", "image"): "mock-image"}
#: Local ``--image`` files larger than this are refused.
MAX_INPUT_IMAGE_BYTES = 100 * 1024 * 1024
MOCK_DELAY_ENV = "TARASH_MOCK_DELAY"

Config = VideoGenerationConfig | ImageGenerationConfig
Response = VideoGenerationResponse | ImageGenerationResponse


def run(args: argparse.Namespace) -> int:
    """Generate, show progress on stderr, save, and print the saved paths (or JSON) on stdout."""
    info = get_provider(args.provider)
    model = args.model or DEFAULT_MODELS.get((info.name, args.modality))
    if model is None:
        raise UsageError(f"--model is required for provider {info.name!r} (see `tarash models {info.name}`)")
    config = build_config(args, info, model)
    request = build_request(args)
    if args.dry_run:
        return dry_run(config, request, json_output=args.json_output)
    if args.out:
        check_destination(args.out)
    progress = contextlib.nullcontext(None) if args.quiet else Progress(sys.stderr, live=is_live(sys.stderr))
    with progress as on_progress:
        response: Response
        if isinstance(config, VideoGenerationConfig):
            assert isinstance(request, VideoGenerationRequest)
            response = generate_video(config, request, on_progress=on_progress)
        else:
            assert isinstance(request, ImageGenerationRequest)
            response = generate_image(config, request, on_progress=on_progress)
    saved = save_outputs(response, args.modality, args.out)
    if args.json_output:
        print(json.dumps(result_json(response, saved)))
    else:
        for path, _url in saved:
            print(path)
    if not args.quiet and not args.json_output:
        metadata = response.execution_metadata
        print(
            f"cost: {describe_cost(metadata.total_cost if metadata is not None else None)}",
            file=sys.stderr,
        )
    return EXIT_OK


def describe_cost(cost: Cost | None) -> str:
    """One line for a cost (``unknown`` when there is no price)."""
    return "unknown (no price for this model: see `tarash generate --help`)" if cost is None else str(cost)


def dry_run(config: Config, request: Any, *, json_output: bool) -> int:
    """Print the expected cost of the generation; nothing is sent (not even a price API request:
    user overrides and the bundled table price it)."""
    estimate = default_gateway().estimate_cost(config, request, price_api=False)
    if json_output:
        print(json.dumps({"estimate": None if estimate is None else unstructure(estimate)}))
    else:
        print(f"expected cost: {describe_cost(estimate)}")
    return EXIT_OK


def build_config(args: argparse.Namespace, info: ProviderInfo, model: str) -> Config:
    """The config: provider, model, API key (option or the provider's env var), timeout."""
    env_key = os.environ.get(info.spec.api_key_env) if info.spec.api_key_env else None
    fields: dict[str, Any] = {
        "provider": info.name,
        "model": model,
        "api_key": args.api_key or env_key or None,
        "provider_config": {
            **(mock_provider_config() if info.name == "mock" else {}),
            **dict(args.provider_config),
        },
        "base_url": args.base_url,
    }
    if args.timeout is not None:
        fields["timeout"] = args.timeout
    if args.poll_interval is not None:
        fields["poll_interval"] = args.poll_interval
    if args.max_cost is not None:
        fields["max_cost"] = args.max_cost
    if args.modality == "video":
        return VideoGenerationConfig(**fields)
    return ImageGenerationConfig(**fields)


def mock_provider_config() -> dict[str, Any]:
    """``{"delay": seconds}`` from ``TARASH_MOCK_DELAY`` when it is set."""
    raw = os.environ.get(MOCK_DELAY_ENV, "").strip()
    if not raw:
        return {}
    try:
        return {"delay": float(raw)}
    except ValueError:
        raise ValidationError(
            f"expected a number of seconds, got {raw!r}", field=MOCK_DELAY_ENV, value=raw
        ) from None


def build_request(args: argparse.Namespace) -> VideoGenerationRequest | ImageGenerationRequest:
    """The request from the options; ``--param`` values go to ``extra_params``."""
    default_role = "first_frame" if args.modality == "video" else "reference"
    fields: dict[str, Any] = {
        "negative_prompt": args.negative_prompt,
        "seed": args.seed,
        "aspect_ratio": args.aspect_ratio,
    }
    if args.modality == "video":
        fields.update(duration_seconds=args.duration, resolution=args.resolution)
    else:
        fields.update(size=args.size, n=args.n)
    given = {name: value for name, value in fields.items() if value is not None}
    images = [input_image(spec, default_role) for spec in args.image]
    extra = dict(args.param)
    if args.modality == "video":
        return VideoGenerationRequest(args.prompt, image_list=images, extra_params=extra, **given)
    return ImageGenerationRequest(args.prompt, image_list=images, extra_params=extra, **given)


def input_image(spec: str, default_role: str) -> ImageType:
    """``PATH_OR_URL[:ROLE]``: URLs are passed on, local files are read into MediaContent."""
    source, role = spec, default_role
    head, sep, tail = spec.rpartition(":")
    if sep and tail in IMAGE_ROLES:
        source, role = head, tail
    elif sep and tail.isidentifier() and not Path(spec).expanduser().is_file():
        raise ValidationError(
            f"unknown role {tail!r} in {spec!r} (roles: {', '.join(IMAGE_ROLES)})",
            field="image_list",
            value=spec,
            allowed=IMAGE_ROLES,
        )
    if source.lower().startswith(("http://", "https://", "data:")):
        return ImageType(image=source, type=role)  # type: ignore[arg-type]
    path = Path(source).expanduser()
    if not path.is_file():
        raise ValidationError(
            f"no such file {source!r} (give a local file, an http(s) URL or a data: URI)",
            field="image_list",
            value=source,
        )
    size = path.stat().st_size
    if size > MAX_INPUT_IMAGE_BYTES:
        raise ValidationError(
            f"{source!r} has {size} bytes, more than the limit of {MAX_INPUT_IMAGE_BYTES}",
            field="image_list",
            value=source,
        )
    import mimetypes

    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    media = MediaContent(content=path.read_bytes(), content_type=content_type)
    return ImageType(image=media, type=role)  # type: ignore[arg-type]


def check_destination(out: str) -> None:
    """Fail before generating (and paying) when ``--out`` cannot be written.

    A trailing separator (``--out clips/``) means a directory: it must exist, or the result would
    be written to a file named like the directory.
    """
    target = Path(out)
    if out.endswith(tuple(sep for sep in (os.sep, os.altsep) if sep)) and not target.is_dir():
        raise OutputError(f"cannot write to {out}: no such directory")
    if not target.is_dir() and not target.parent.is_dir():
        raise OutputError(f"cannot write {target}: directory {target.parent} does not exist")


def save_outputs(
    response: Response,
    modality: str,
    out: str | None,
) -> list[tuple[Path, str | None]]:
    """Download or write every output; returns (absolute path, source URL or None) pairs.

    Without ``--out`` (or with a directory) files are named after the request id. Several
    outputs with ``--out NAME.EXT`` become ``NAME_1.EXT``, ``NAME_2.EXT``…
    """
    media: list[str | MediaContent] = (
        [response.video] if isinstance(response, VideoGenerationResponse) else list(response.images)
    )
    target = Path(out) if out else Path.cwd()
    saved = []
    for index, item in enumerate(media, start=1):
        if target.is_dir():
            dest = target
            filename: str | None = (
                response.request_id if len(media) == 1 else (f"{response.request_id}_{index}")
            )
        else:
            dest = target if len(media) == 1 else target.with_name(f"{target.stem}_{index}{target.suffix}")
            filename = None
        try:
            if isinstance(item, MediaContent):
                path = save_bytes(item.content, dest, content_type=item.content_type, filename=filename)
            else:
                path = download(item, dest, filename=filename)
        except (TarashException, OSError) as exc:
            raise OutputError(f"could not save the {modality}: {exc}") from exc
        url = item if isinstance(item, str) and not item.startswith("data:") else None
        saved.append((path.absolute(), url))
    return saved


def result_json(response: Response, saved: list[tuple[Path, str | None]]) -> dict[str, Any]:
    """The ``--json`` object."""
    metadata = response.execution_metadata
    cost = metadata.total_cost if metadata is not None else None
    return {
        "request_id": response.request_id,
        "provider": response.provider,
        "model": response.model,
        "output": str(saved[0][0]),
        "outputs": [str(path) for path, _url in saved],
        "url": redact_text(saved[0][1]) if saved[0][1] else None,
        "attempts": metadata.total_attempts if metadata is not None else 1,
        "is_mock": response.is_mock,
        "cost": None if cost is None else unstructure(cost),
    }
