"""The ``tarash`` command: generate media, list plugins, providers and models.

``tarash generate video PROMPT`` and ``tarash generate image PROMPT`` run a generation (the
offline ``mock`` provider by default) with a live progress display and save the result;
``tarash plugins``, ``tarash providers`` and ``tarash models PROVIDER`` describe what is installed.
Plugins add commands through the ``register_commands`` hook. Failures print one line on stderr and
exit with a documented code (see ``tarash --help``).

Only the standard library is imported until a command runs, so ``tarash --help`` is fast.
"""

from __future__ import annotations

import sys

from ._parser import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    SubParsers,
    build_parser,
)

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run ``tarash`` with ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    _register_api_key(args_list)
    parser, subparsers = build_parser()
    command = next((arg for arg in args_list if not arg.startswith("-")), None)
    if command is not None and command not in subparsers.choices:
        _add_plugin_commands(subparsers)
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exit_:
        return _exit_status(exit_)
    # lazy: `tarash --help` and usage errors start without loading the library
    from ._errors import fail, report

    func = getattr(args, "func", None)
    if func is None:
        report(f"command {args.command!r} does not say what to run (its parser needs set_defaults(func=...))")
        return EXIT_INTERNAL
    try:
        code = func(args)
    except KeyboardInterrupt:
        print("tarash: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SystemExit as exit_:
        return _exit_status(exit_)
    except Exception as exc:
        return fail(exc)
    return EXIT_OK if code is None else int(code)


def _exit_status(exit_: SystemExit) -> int:
    """The status a ``SystemExit`` stands for, as the interpreter would exit with it."""
    code = exit_.code
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _register_api_key(args: list[str]) -> None:
    """Scrub a ``--api-key`` value from every message, even an argument error's."""
    for index, arg in enumerate(args):
        if arg == "--api-key" and index + 1 < len(args):
            value = args[index + 1]
        elif arg.startswith("--api-key="):
            value = arg.partition("=")[2]
        else:
            continue
        # lazy: `tarash --help` and usage errors start without loading the library
        from .._redact import register_secret

        register_secret(value)


def _add_plugin_commands(subparsers: SubParsers) -> None:
    """Let every plugin add its commands; a failing plugin is reported and skipped."""
    # lazy: `tarash --help` and usage errors start without loading the library
    from .._plugins import HOST
    from ..exceptions import TarashException
    from ._errors import report

    try:
        HOST.ensure_loaded()
    except TarashException as exc:
        report(f"plugins could not be loaded: {exc}")
    for impl in HOST.pm.hook.register_commands.get_hookimpls():
        try:
            impl.function(**{name: subparsers for name in impl.argnames})
        except Exception as exc:
            print(
                f"tarash: warning: plugin {impl.plugin_name!r} failed to add its commands: "
                f"{type(exc).__name__}: {_redacted(exc)}",
                file=sys.stderr,
            )


def _redacted(exc: BaseException) -> str:
    # lazy: `tarash --help` and usage errors start without loading the library
    from .._redact import redact_text

    return " ".join(redact_text(str(exc)).split())
