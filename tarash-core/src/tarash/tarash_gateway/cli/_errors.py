"""How the ``tarash`` command reports a failure: one redacted line on stderr and an exit code."""

from __future__ import annotations

import os
import sys

from ._parser import (
    EXIT_INTERNAL,
    EXIT_MODERATION,
    EXIT_OUTPUT,
    EXIT_PROVIDER,
    EXIT_PROVIDER_FAILURE,
    EXIT_TIMEOUT,
    EXIT_USAGE,
    EXIT_VALIDATION,
)

__all__ = [
    "OPTION_FOR_FIELD",
    "OutputError",
    "UsageError",
    "describe",
    "exit_code",
    "fail",
    "option_for",
    "report",
]


class UsageError(Exception):
    """Arguments that parse but cannot work together (exit code 2)."""


class OutputError(Exception):
    """The result could not be downloaded or written (exit code 8)."""


#: Request and config fields, as the command-line options that set them.
OPTION_FOR_FIELD = {
    "prompt": "PROMPT",
    "provider": "--provider",
    "model": "--model",
    "api_key": "--api-key",
    "timeout": "--timeout",
    "poll_interval": "--poll-interval",
    "base_url": "--base-url",
    "provider_config": "--provider-config",
    "aspect_ratio": "--aspect-ratio",
    "duration_seconds": "--duration",
    "resolution": "--resolution",
    "negative_prompt": "--negative-prompt",
    "seed": "--seed",
    "size": "--size",
    "n": "--n",
    "image_list": "--image",
    "extra_params": "--param",
    "delay_between_updates": "TARASH_MOCK_DELAY",
}


def option_for(field: str) -> str:
    """The option behind a (possibly dotted or indexed) field name, e.g. ``image_list[0].type``."""
    base = field.split(".", 1)[0].split("[", 1)[0]
    return OPTION_FOR_FIELD.get(base, field)


def exit_code(error: BaseException) -> int:
    """The documented exit code for ``error``."""
    # lazy: `tarash --help` and usage errors start without loading the library
    from ..exceptions import (
        ContentModerationError,
        CostLimitExceededError,
        ProviderConflictError,
        ProviderNotFoundError,
        TarashException,
        TimeoutError,
        UnsupportedModalityError,
        ValidationError,
    )

    table: tuple[tuple[type[BaseException] | tuple[type[BaseException], ...], int], ...] = (
        (UsageError, EXIT_USAGE),
        (OutputError, EXIT_OUTPUT),
        ((ProviderNotFoundError, ProviderConflictError), EXIT_PROVIDER),
        ((ValidationError, UnsupportedModalityError, CostLimitExceededError), EXIT_VALIDATION),
        (ContentModerationError, EXIT_MODERATION),
        (TimeoutError, EXIT_TIMEOUT),
        (TarashException, EXIT_PROVIDER_FAILURE),
    )
    for kinds, code in table:
        if isinstance(error, kinds):
            return code
    return EXIT_INTERNAL


def describe(error: BaseException) -> str:
    """The message for ``error``, naming the option behind an invalid field."""
    # lazy: `tarash --help` and usage errors start without loading the library
    from ..exceptions import MissingCredentialsError, ProviderNotFoundError, ValidationError

    text = str(error)
    if (
        isinstance(error, ValidationError)
        and not isinstance(error, (ProviderNotFoundError, MissingCredentialsError))
        and error.field
        and error.phase != "download"
    ):
        return f"invalid {option_for(error.field)}: {text}"
    return text


def report(message: str) -> None:
    """Print ``tarash: error: <message>`` on stderr as one line, secrets scrubbed."""
    # lazy: `tarash --help` and usage errors start without loading the library
    from .._redact import redact_text

    line = " ".join(redact_text(message).split())
    print(f"tarash: error: {line}", file=sys.stderr)


def fail(error: BaseException) -> int:
    """Report ``error``; return its exit code (tracebacks only for internal errors, on demand)."""
    code = exit_code(error)
    if code != EXIT_INTERNAL:
        report(describe(error))
        return code
    report(f"unexpected {type(error).__name__}: {error} (set TARASH_DEBUG=1 for a traceback)")
    if os.environ.get("TARASH_DEBUG", "").strip().lower() in ("1", "true", "yes", "on"):
        import traceback

        # lazy: `tarash --help` and usage errors start without loading the library
        from .._redact import redact_text

        print(redact_text("".join(traceback.format_exception(error))), file=sys.stderr, end="")
    return code
