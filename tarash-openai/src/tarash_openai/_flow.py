"""The blocking image flow: one POST to the Images API answers with the images (base64).

``generate_image`` checks everything first (nothing is sent for an impossible request), fetches
input images given as http(s) URLs through core, then sends the generation (JSON) or the edit
(multipart) once. Core never resends that POST: a lost answer is ``UnknownSubmissionError``.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Generator, Mapping
from typing import Any

from tarash.tarash_gateway.exceptions import (
    GenerationFailedError,
    HTTPError,
    ValidationError,
)
from tarash.tarash_gateway.models import (
    ImageGenerationConfig,
    ImageGenerationRequest,
    ImageGenerationResponse,
    MediaContent,
)
from tarash.tarash_gateway.plugin import CallContext, Request, Response

from . import _errors, _payload
from ._specs import AZURE

#: Answer headers that carry the request id (OpenAI, then Azure's API gateway).
REQUEST_ID_HEADERS = ("x-request-id", "apim-request-id")

Flow = Generator[Request, Response, Any]


def _download(url: str, field: str) -> Flow:
    """An input image given as a URL, fetched through core (no auth header: not the API)."""
    try:
        answer = yield Request(method="GET", url=url, auth=False)
    except HTTPError as exc:
        if exc.status_code is not None and 400 <= exc.status_code < 500 and exc.status_code != 429:
            raise ValidationError(
                f"{field}: fetching {url} answered HTTP {exc.status_code}", field=field, value=url
            ) from exc
        raise
    content_type = (answer.header("content-type") or "").split(";")[0].strip().lower()
    media = MediaContent(content=answer.content, content_type=content_type or "application/octet-stream")
    _payload.check_media_type(media, field)
    return media


def _outline(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The answer without its base64 images (their length instead), for ``raw_response``."""
    outline = dict(payload)
    items = payload.get("data")
    if isinstance(items, list):
        outline["data"] = [
            {**item, "b64_json": f"<{len(item['b64_json'])} base64 characters>"}
            if isinstance(item, Mapping) and isinstance(item.get("b64_json"), str)
            else item
            for item in items
        ]
    return outline


def _images(payload: Any, content_type: str) -> list[str]:
    items = payload.get("data") if isinstance(payload, Mapping) else None
    if not isinstance(items, list) or not items:
        raise GenerationFailedError("the Images API answered without images", phase="result")
    images = []
    for index, item in enumerate(items):
        encoded = item.get("b64_json") if isinstance(item, Mapping) else None
        if not isinstance(encoded, str) or not encoded:
            raise GenerationFailedError(f"image {index} of the answer has no b64_json", phase="result")
        try:
            base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise GenerationFailedError(
                f"image {index} of the answer is not valid base64", phase="result"
            ) from None
        images.append(f"data:{content_type};base64,{encoded}")
    return images


def parse(answer: Response, call: _payload.Call, context: CallContext) -> ImageGenerationResponse:
    """The response for the Images API's answer to ``call``."""
    try:
        payload = answer.json()
    except ValueError:
        raise GenerationFailedError(
            "the Images API answer is not JSON", phase="result", raw_response=answer.text[:2000]
        ) from None
    output_format = payload.get("output_format") if isinstance(payload, Mapping) else None
    content_type = _payload.OUTPUT_TYPES.get(output_format or call.output_format, "image/png")
    try:
        images = _images(payload, content_type)
    except GenerationFailedError as exc:
        exc.raw_response = _outline(payload) if isinstance(payload, Mapping) else payload
        exc.provider, exc.model = context.provider, call.model
        raise
    request_id = next(
        (value for value in map(answer.header, REQUEST_ID_HEADERS) if value),
        f"{context.provider}-{payload.get('created', 'unknown')}",
    )
    revised = next(
        (item["revised_prompt"] for item in payload["data"] if isinstance(item.get("revised_prompt"), str)),
        None,
    )
    return ImageGenerationResponse(
        request_id=request_id,
        images=images,
        content_type=content_type,
        revised_prompt=revised,
        raw_response=_outline(payload),
        provider=context.provider,
        model=call.model,
    )


def generate_image(
    config: ImageGenerationConfig, request: ImageGenerationRequest, context: CallContext
) -> Flow:
    """Generate (JSON) or edit (multipart) images with one POST; see the module docstring."""
    call = _payload.plan(config, request, azure=context.provider == AZURE, base_url=context.base_url)
    files: list[tuple[str, tuple[str, bytes, str]]] = []
    for index, (part, field, source) in enumerate(call.images):
        media = source if isinstance(source, MediaContent) else (yield from _download(source, field))
        extension = _payload.INPUT_TYPES[media.content_type]
        stem = f"image-{index}" if part == "image[]" else part
        files.append((part, (f"{stem}.{extension}", media.content, media.content_type)))
    common: dict[str, Any] = {
        "method": "POST",
        "url": call.path,
        "params": call.params,
        "headers": call.headers,
    }
    post = (
        Request(**common, files=files, data=call.form()) if files else Request(**common, json=dict(call.body))
    )
    try:
        answer = yield post
    except HTTPError as exc:
        translated = _errors.translate(exc, provider=context.provider, model=call.model)
        if translated is exc:
            raise
        raise translated from exc
    return parse(answer, call, context)
