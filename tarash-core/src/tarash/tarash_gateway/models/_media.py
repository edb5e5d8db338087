"""Media values (URLs, data URIs, :class:`MediaContent`, local files read on construction),
image roles, and the converters and validators the other model modules share."""

from __future__ import annotations

import base64
import math
from collections.abc import Callable, Mapping
from typing import Any, Literal, Union

import attrs

from .. import _validators as v
from .._local_media import read_local
from ..exceptions import ValidationError

__all__ = [
    "AnyDict",
    "AspectRatio",
    "ImageRole",
    "ImageType",
    "MediaContent",
    "MediaType",
    "Resolution",
    "StatusType",
]

AnyDict = dict[str, Any]


#: An aspect ratio such as ``"16:9"``, ``"9:16"``, ``"1:1"``, ``"4:3"``, ``"21:9"`` or ``"auto"``.
AspectRatio = str


#: A resolution such as ``"480p"``, ``"720p"``, ``"1080p"`` or ``"4k"``.
Resolution = str


StatusType = Literal["queued", "processing", "completed", "failed"]


ImageRole = Literal["reference", "first_frame", "last_frame", "asset", "style"]


@attrs.frozen(repr=False)
class MediaContent:
    """Raw media bytes with their MIME type (also accepted as ``{"content": b, "content_type": t}``)."""

    content: bytes = attrs.field(validator=v.binary)
    content_type: str = attrs.field(validator=v.string(nonempty=True, max_len=200))

    def __repr__(self) -> str:
        return f"MediaContent(<{len(self.content)} bytes>, content_type={self.content_type!r})"

    def __getitem__(self, key: str) -> Any:
        """Dict-style access, as with the original TypedDict (``media["content"]``)."""
        if key in ("content", "content_type"):
            return getattr(self, key)
        raise KeyError(key)

    def to_data_uri(self) -> str:
        """``data:<type>;base64,<content>``."""
        return f"data:{self.content_type};base64,{base64.b64encode(self.content).decode()}"


#: A URL (https, data URI, file) or raw bytes with their MIME type.
MediaType = Union[str, MediaContent]


def _to_media(value: Any) -> Any:
    """``{"content": b, "content_type": t}`` becomes MediaContent; an invalid one is left as is
    for the field's validator, which names the field."""
    if isinstance(value, Mapping) and set(value) == {"content", "content_type"}:
        try:
            return MediaContent(content=value["content"], content_type=value["content_type"])
        except ValidationError:
            return value
    return value


def _to_optional_media(value: Any) -> Any:
    return None if value is None else _to_media(value)


def _input_media(value: Any, field: str) -> Any:
    """An input media field's value: a local input (path, bytes, binary file) is read into
    MediaContent now (see :mod:`._local_media`); anything else as :func:`_to_media`."""
    if value is None:
        return None
    local = read_local(value, field)
    return _to_media(value) if local is None else MediaContent(content=local[0], content_type=local[1])


def _image_input(value: Any) -> Any:
    return _input_media(value, "image")


def _video_input(value: Any) -> Any:
    return _input_media(value, "video")


def _mask_input(value: Any) -> Any:
    return _input_media(value, "mask_image")


def _media_validator(optional: bool) -> v.Validator:
    def check(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if isinstance(value, MediaContent):
            return
        if not isinstance(value, str) or not value.strip() or "\x00" in value:
            raise v.fail(
                inst, attr, value, "a URL, a data URI or MediaContent (bytes content, non-empty content_type)"
            )

    return check


@attrs.frozen(repr=False)
class ImageType:
    """An input image and its role (also accepted as ``{"image": ..., "type": ...}``).

    ``image`` may also be a local input (a ``pathlib.Path``, ``bytes`` or an open binary file),
    read into :class:`MediaContent` when the object is built (see :mod:`._local_media`)."""

    image: MediaType = attrs.field(converter=_image_input, validator=_media_validator(False))
    type: ImageRole = attrs.field(validator=v.one_of(v.IMAGE_ROLES, optional=False))

    def __getitem__(self, key: str) -> Any:
        if key in ("image", "type"):
            return getattr(self, key)
        raise KeyError(key)

    def __repr__(self) -> str:
        image = self.image if isinstance(self.image, MediaContent) else _short(self.image)
        return f"ImageType(image={image!r}, type={self.type!r})"


def _short(text: str) -> str:
    return text if len(text) <= 80 else f"{text[:60]}...<{len(text)} chars>"


def _to_image_list(value: Any) -> Any:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        items = []
        for index, item in enumerate(value):
            if isinstance(item, ImageType):
                items.append(item)
            elif isinstance(item, Mapping) and set(item) <= {"image", "type"}:
                try:
                    role: Any = item.get("type")
                    items.append(ImageType(image=item.get("image"), type=role))
                except ValidationError as exc:
                    raise ValidationError(
                        f"image_list[{index}]: {exc.message}",
                        field=f"image_list[{index}].{exc.field}",
                        value=exc.value,
                        allowed=exc.allowed,
                    ) from None
            else:
                raise ValidationError(
                    f"image_list[{index}]: expected {{'image': ..., 'type': role}}, "
                    f"got {type(item).__name__}",
                    field=f"image_list[{index}]",
                    value=item,
                )
        return items
    return value


def _image_list_validator(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
    if not isinstance(value, list):
        raise v.fail(inst, attr, value, "a list of images")


def _to_list(value: Any) -> list[Any]:
    return list(value)


def _to_dict(value: Any) -> Any:
    if value is None:
        return {}
    if isinstance(value, Mapping):
        return dict(value)
    return value


def _to_tuple(value: Any) -> Any:
    """Lists and tuples become tuples; anything else is left for the validator to reject."""
    return tuple(value) if isinstance(value, (list, tuple)) else value


def _sequence_of(
    expected: str, item_ok: Callable[[Any], bool], *, optional: bool = True, nonempty: bool = False
) -> v.Validator:
    """A tuple whose items pass ``item_ok``; a bad item is named as ``field[index]``."""

    def check(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if value is None and optional:
            return
        if not isinstance(value, tuple) or (nonempty and not value):
            kind = "a non-empty list" if nonempty else "a list"
            raise v.fail(inst, attr, value, f"{kind} of {expected}")
        for index, item in enumerate(value):
            if not item_ok(item):
                raise ValidationError(
                    f"{type(inst).__name__}.{attr.name}[{index}]: expected {expected}, "
                    f"got {v.describe(item)}",
                    field=f"{attr.name}[{index}]",
                    value=item,
                )

    return check


def _is_status(item: Any) -> bool:
    return isinstance(item, str) and item in v.STATUSES


def _is_percent(item: Any) -> bool:
    return item is None or (
        isinstance(item, (int, float))
        and not isinstance(item, bool)
        and math.isfinite(item)
        and 0 <= item <= 100
    )


def _is_str_mapping(item: Any) -> bool:
    return isinstance(item, Mapping) and all(isinstance(k, str) for k in item)


def _is_position(item: Any) -> bool:
    return item is None or (isinstance(item, int) and not isinstance(item, bool) and item >= 0)


def _is_url(item: Any) -> bool:
    return isinstance(item, str) and bool(item.strip()) and "\x00" not in item


def _build(cls: type[Any], prefix: str, value: Mapping[Any, Any]) -> Any:
    """``cls(**value)`` whose errors name the nested field (``"polling.delay_between_updates"``)."""
    names = sorted(a.name for a in attrs.fields(cls))
    unknown = [k for k in value if k not in names]
    if unknown:
        raise ValidationError(
            f"{prefix}: unknown {cls.__name__} field(s) {', '.join(v.describe(k, 40) for k in unknown)}",
            field=prefix,
            value=dict(value),
            allowed=names,
        )
    try:
        return cls(**value)
    except ValidationError as exc:
        raise ValidationError(
            f"{prefix}: {exc.message}",
            field=f"{prefix}.{exc.field}" if exc.field else prefix,
            value=exc.value,
            allowed=exc.allowed,
        ) from None


def _instance_of(expected: str, *types: type[Any]) -> v.Validator:
    def check(inst: Any, attr: attrs.Attribute[Any], value: Any) -> None:
        if value is not None and not isinstance(value, types):
            raise v.fail(inst, attr, value, expected)

    return check
