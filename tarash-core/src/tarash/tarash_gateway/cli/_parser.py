"""The argument parser of the ``tarash`` command.

Built from the standard library alone: no engine, plugin or httpx import happens here, so
``tarash --help`` stays fast. Each command's ``func`` imports its implementation when called.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable
from typing import Any, NoReturn, TypeAlias

__all__ = [
    "ENVIRONMENT",
    "EXIT_CODE_TABLE",
    "EXIT_INTERNAL",
    "EXIT_INTERRUPTED",
    "EXIT_MODERATION",
    "EXIT_OK",
    "EXIT_OUTPUT",
    "EXIT_PROVIDER",
    "EXIT_PROVIDER_FAILURE",
    "EXIT_TIMEOUT",
    "EXIT_USAGE",
    "EXIT_VALIDATION",
    "IMAGE_ROLES_HELP",
    "Handler",
    "Parser",
    "SubParsers",
    "build_parser",
    "command",
    "param",
]

EXIT_OK = 0
EXIT_INTERNAL = 1
EXIT_USAGE = 2
EXIT_PROVIDER = 3
EXIT_VALIDATION = 4
EXIT_MODERATION = 5
EXIT_TIMEOUT = 6
EXIT_PROVIDER_FAILURE = 7
EXIT_OUTPUT = 8
EXIT_INTERRUPTED = 130

EXIT_CODE_TABLE = f"""\
exit codes:
  {EXIT_OK:<4} success
  {EXIT_INTERNAL:<4} unexpected internal error (a bug: please report it)
  {EXIT_USAGE:<4} bad arguments
  {EXIT_PROVIDER:<4} unknown provider (the installed ones are listed), or one claimed twice
  {EXIT_VALIDATION:<4} invalid request (the field is named), modality not supported, or over
       --max-cost or the budget (refused before anything was sent)
  {EXIT_MODERATION:<4} refused by the provider's content moderation
  {EXIT_TIMEOUT:<4} the generation did not finish within --timeout
  {EXIT_PROVIDER_FAILURE:<4} provider or network failure (HTTP error, connection, failed job)
  {EXIT_OUTPUT:<4} the result could not be downloaded or written
  {EXIT_INTERRUPTED:<4} interrupted (Ctrl-C)"""

ENVIRONMENT = """\
environment:
  <provider key variable>  the API key when --api-key is not given (see `tarash providers`)
  TARASH_MOCK_DELAY        seconds between the mock provider's simulated updates
  TARASH_DEBUG=1           print a traceback for unexpected internal errors
  TARASH_PLUGINS, TARASH_DISABLE_PLUGINS, TARASH_STRICT_PLUGINS   plugin selection"""

IMAGE_ROLES_HELP = "reference, first_frame, last_frame, asset, style"

Handler = Callable[[argparse.Namespace], int]
SubParsers: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"


class Parser(argparse.ArgumentParser):
    """An ArgumentParser whose error messages are scrubbed of secrets (a mistyped API key)."""

    def error(self, message: str) -> NoReturn:
        # lazy: `tarash --help` and usage errors start without loading the library
        from .._redact import redact_text

        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {redact_text(message)}\n")


class _VersionAction(argparse.Action):
    """``--version``: reads the installed version only when asked."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the version and exit")

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        # lazy: `tarash --help` and usage errors start without loading the library
        from .. import __version__

        print(f"tarash {__version__}")
        parser.exit(EXIT_OK)


def command(module: str, function: str) -> Handler:
    """A handler that imports ``cli.<module>`` and calls ``function`` only when run."""

    def run(args: argparse.Namespace) -> int:
        target = getattr(importlib.import_module(f"{__package__}.{module}"), function)
        return int(target(args))

    return run


def param(text: str) -> tuple[str, Any]:
    """``--param key=value``: the value is parsed as JSON when it is valid JSON, else kept."""
    key, sep, raw = text.partition("=")
    key = key.strip()
    if not sep or not key:
        raise argparse.ArgumentTypeError(f"expected key=value, got {text!r}")
    import json

    try:
        value: Any = json.loads(raw)
    except ValueError:
        value = raw
    return key, value


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps sub-command help on the command's line (argparse under-counts their indent)."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)

    def add_argument(self, action: argparse.Action) -> None:
        super().add_argument(action)
        if isinstance(action, argparse._SubParsersAction):
            longest = max((len(name) for name in action.choices), default=0)
            needed = longest + self._current_indent + 2 * self._indent_increment
            self._action_max_length = max(self._action_max_length, needed)


def _add_generate_options(parser: argparse.ArgumentParser, modality: str) -> None:
    role = "first_frame" if modality == "video" else "reference"
    parser.add_argument("prompt", metavar="PROMPT", help=f"what the {modality} should show")
    parser.add_argument(
        "--provider", default="mock", help="provider name (default: mock, the offline mock provider)"
    )
    parser.add_argument(
        "--model",
        help="model id (default for mock: its model; required for "
        "other providers, see `tarash models PROVIDER`)",
    )
    parser.add_argument("--aspect-ratio", metavar="RATIO", help="e.g. 16:9, 9:16, 1:1")
    if modality == "video":
        parser.add_argument("--duration", type=int, metavar="SECONDS", help="length in seconds")
        parser.add_argument("--resolution", help="e.g. 720p, 1080p, 4k")
    else:
        parser.add_argument("--size", help="e.g. 1024x1024")
        parser.add_argument("--n", type=int, default=1, metavar="COUNT", help="number of images")
    parser.add_argument(
        "--image",
        action="append",
        default=[],
        metavar="PATH_OR_URL[:ROLE]",
        help=f"input image: a local file (read and sent as bytes), an http(s) or data: URL; "
        f"ROLE is one of {IMAGE_ROLES_HELP} (default {role}); repeatable",
    )
    parser.add_argument("--negative-prompt", metavar="TEXT", help="what to avoid")
    parser.add_argument("--seed", type=int, help="random seed")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        type=param,
        metavar="KEY=VALUE",
        help="provider-specific parameter (JSON value when valid JSON, else a string); repeatable",
    )
    parser.add_argument(
        "--base-url",
        metavar="URL",
        help="the provider's endpoint (a proxy, a regional endpoint or a local test server)",
    )
    parser.add_argument(
        "--provider-config",
        dest="provider_config",
        action="append",
        default=[],
        type=param,
        metavar="KEY=VALUE",
        help="provider option (config.provider_config, e.g. webhook_url=... or ca_bundle=PATH); repeatable",
    )
    parser.add_argument(
        "--poll-interval",
        type=float,
        metavar="SECONDS",
        help="seconds between status checks when the provider gives no hint "
        "(default: 5 for video, 2 for images)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="deadline for the whole generation; the job is cancelled after it",
    )
    parser.add_argument(
        "--out",
        metavar="PATH",
        help="file or existing directory to save to (default: the current "
        "directory, named after the request id)",
    )
    parser.add_argument(
        "--json",
        dest="json_output",
        action="store_true",
        help="print one JSON object with the result on stdout",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help="API key (default: the provider's environment variable; prefer it, "
        "command lines are visible to other local users)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the expected cost and exit: nothing is sent to the provider",
    )
    parser.add_argument(
        "--max-cost",
        metavar="AMOUNT",
        help="refuse before submit when the expected cost exceeds AMOUNT (e.g. 2.50, in USD)",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    parser.set_defaults(func=command("_generate", "run"))


def _add_generate(subparsers: SubParsers) -> None:
    generate = subparsers.add_parser(
        "generate",
        help="generate a video or an image",
        formatter_class=_Formatter,
        description="Generate a video or an image and save it locally.",
        epilog=f"{EXIT_CODE_TABLE}\n\n{ENVIRONMENT}",
        allow_abbrev=False,
    )
    kinds = generate.add_subparsers(dest="modality", metavar="{video,image}", required=True)
    video = kinds.add_parser(
        "video",
        help="generate a video",
        formatter_class=_Formatter,
        allow_abbrev=False,
        description="Generate a video, show its progress and save it (default: the offline mock provider).",
        epilog='example:\n  tarash generate video "a lighthouse at dawn" --provider mock '
        f"--out lighthouse.mp4\n\n{EXIT_CODE_TABLE}\n\n{ENVIRONMENT}",
    )
    _add_generate_options(video, "video")
    image = kinds.add_parser(
        "image",
        help="generate one or more images",
        formatter_class=_Formatter,
        allow_abbrev=False,
        description="Generate images, show their progress and save them (default: the offline "
        "mock provider). Several images are saved as NAME_1.EXT, NAME_2.EXT...",
        epilog='example:\n  tarash generate image "a red fox" --n 2 --out fox.png\n\n'
        f"{EXIT_CODE_TABLE}\n\n{ENVIRONMENT}",
    )
    _add_generate_options(image, "image")


def _add_listings(subparsers: SubParsers) -> None:
    json_help = "print JSON instead of a table"
    plugins = subparsers.add_parser(
        "plugins",
        help="list installed plugins and why a broken one failed",
        description="List the installed plugins: distribution, version, providers and status "
        "(loaded, failed with the reason, disabled, conflict).",
        allow_abbrev=False,
    )
    plugins.add_argument("--json", dest="json_output", action="store_true", help=json_help)
    plugins.set_defaults(func=command("_listing", "plugins"))
    providers = subparsers.add_parser(
        "providers",
        help="list usable providers",
        allow_abbrev=False,
        description="List the providers that can be used, with the plugin providing each.",
    )
    providers.add_argument("--json", dest="json_output", action="store_true", help=json_help)
    providers.set_defaults(func=command("_listing", "providers"))
    models = subparsers.add_parser(
        "models",
        help="list a provider's known model families",
        allow_abbrev=False,
        description="List the model families a provider declares and their allowed values.",
    )
    models.add_argument("provider", metavar="PROVIDER")
    models.add_argument("--json", dest="json_output", action="store_true", help=json_help)
    models.set_defaults(func=command("_listing", "models"))


def _add_jobs(subparsers: SubParsers) -> None:
    """Add the ``jobs`` and ``webhooks`` groups when their modules are present."""
    for group in ("_jobs", "_webhooks"):
        name = f"{__package__}.{group}"
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
            continue
        module.add_parser(subparsers)


def _add_costs(subparsers: SubParsers) -> None:
    """Add the ``costs`` group."""
    importlib.import_module(f"{__package__}._costs").add_parser(subparsers)


def build_parser() -> tuple[argparse.ArgumentParser, SubParsers]:
    """The top-level parser and its sub-parsers action (where plugins add commands)."""
    parser: argparse.ArgumentParser = Parser(
        prog="tarash",
        formatter_class=_Formatter,
        allow_abbrev=False,
        description="Generate videos and images with any installed provider, from the shell.",
        epilog="Run `tarash COMMAND --help` for a command's options. Plugins may add commands.\n\n"
        f"{EXIT_CODE_TABLE}\n\n{ENVIRONMENT}",
    )
    parser.add_argument("--version", action=_VersionAction)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_generate(subparsers)
    _add_listings(subparsers)
    _add_jobs(subparsers)
    _add_costs(subparsers)
    return parser, subparsers
