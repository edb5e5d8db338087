"""``tarash jobs list|status|resume|cancel|download|migrate``: the job ledger from the shell.

Only the standard library is imported here; each command imports the jobs API when it runs, so
``tarash --help`` stays fast.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from typing import TYPE_CHECKING, Any

from ._parser import EXIT_OK, EXIT_PROVIDER_FAILURE, SubParsers, command

if TYPE_CHECKING:
    from .._ledger import JobRecord, LedgerAdapter
    from ..jobs import JobOutcome

__all__ = [
    "JOBS_EPILOG",
    "LIST_STATES",
    "add_parser",
    "cancel",
    "download",
    "list_jobs",
    "migrate",
    "resume",
    "status",
]

#: The states ``tarash jobs list --state`` accepts: a ledger record's states, and ``unfinished``.
LIST_STATES = (
    "submitting",
    "submitted",
    "queued",
    "processing",
    "completed",
    "failed",
    "cancelled",
    "unknown",
    "not_found",
    "unfinished",
)

JOBS_EPILOG = """\
The ledger records every submission (see the durable-jobs guide): TARASH_LEDGER=/path/jobs.db
chooses its file, TARASH_LEDGER=postgresql://... a PostgreSQL database shared by a fleet of workers
(see the fleet guide), TARASH_LEDGER=off switches it off; by default it is jobs.db under
TARASH_HOME, $XDG_DATA_HOME/tarash or ~/.local/share/tarash.

exit codes:
  0    success (resume: every job completed, or is being collected by another process)
  2    bad arguments, unknown job, the ledger is off, or (migrate) its database cannot be used
  7    resume: some job failed, was cancelled, is unknown (may have been billed), not_found (its
       lost submit created nothing) or unfinished;
       cancel: the provider cannot cancel, or the cancel failed
  8    download: an output expired (the provider deleted it) or could not be written"""


def add_parser(subparsers: SubParsers) -> None:
    """Add ``tarash jobs`` and its sub-commands."""
    jobs = subparsers.add_parser(
        "jobs",
        help="list, inspect, resume or cancel recorded jobs",
        allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Inspect the job ledger, collect jobs a crashed process left behind, or cancel a job.",
        epilog=JOBS_EPILOG,
    )
    commands = jobs.add_subparsers(
        dest="jobs_command", metavar="{list,status,resume,cancel,download,migrate}", required=True
    )
    json_help = "print JSON instead of text"

    listing = commands.add_parser(
        "list",
        help="list recorded jobs, oldest first",
        description="List the jobs in the ledger, oldest first.",
        allow_abbrev=False,
    )
    listing.add_argument(
        "--state",
        type=str.lower,
        choices=LIST_STATES,
        metavar="STATE",
        help=f"only this state ({', '.join(LIST_STATES[:-1])}), or 'unfinished' for jobs not collected yet",
    )
    listing.add_argument("--json", dest="json_output", action="store_true", help=json_help)
    listing.set_defaults(func=command("_jobs", "list_jobs"))

    status = commands.add_parser(
        "status",
        help="show one job and its history",
        allow_abbrev=False,
        description="Show a job's record and history; for an unfinished job, ask its provider "
        "for the current status too (one status call).",
    )
    status.add_argument("key", metavar="KEY", help="the ledger key or the provider's job id")
    status.add_argument("--offline", action="store_true", help="do not ask the provider")
    status.add_argument("--json", dest="json_output", action="store_true", help=json_help)
    status.set_defaults(func=command("_jobs", "status"))

    resume = commands.add_parser(
        "resume",
        help="collect unfinished jobs without resubmitting them",
        allow_abbrev=False,
        description="Poll every unfinished job (or one) from its recorded job id and fetch its "
        "result. Nothing is ever resubmitted.",
    )
    resume.add_argument("key", metavar="KEY", nargs="?", help="only this job (ledger key or provider job id)")
    resume.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="how long to wait for each job (default: its config's timeout); "
        "a job still running then is left for a later resume",
    )
    resume.add_argument("--json", dest="json_output", action="store_true", help=json_help)
    resume.set_defaults(func=command("_jobs", "resume"))

    cancel = commands.add_parser(
        "cancel",
        help="ask the provider to cancel a job",
        description="Ask the job's provider to cancel it.",
        allow_abbrev=False,
    )
    cancel.add_argument("key", metavar="KEY", help="the ledger key or the provider's job id")
    cancel.add_argument("--json", dest="json_output", action="store_true", help=json_help)
    cancel.set_defaults(func=command("_jobs", "cancel"))

    download = commands.add_parser(
        "download",
        help="save a completed job's outputs to disk before they expire",
        description="Download a collected job's outputs (atomically) and record each file's SHA-256 "
        "in the job's ledger history. Providers delete outputs (fal: after the lifetime asked for, "
        "else at least 7 days; Replicate: one hour after an API prediction was created).",
        allow_abbrev=False,
    )
    download.add_argument("key", metavar="KEY", help="the ledger key or the provider's job id")
    download.add_argument(
        "--out", metavar="PATH", default=".", help="a directory (default: here), or a file for one output"
    )
    download.add_argument("--ca-bundle", metavar="FILE", help="trust this CA (a proxy, a local server)")
    download.add_argument("--json", dest="json_output", action="store_true", help=json_help)
    download.set_defaults(func=command("_jobs", "download"))

    migrate = commands.add_parser(
        "migrate",
        help="create or upgrade a PostgreSQL ledger's schema",
        description="Create or upgrade the schema of a PostgreSQL ledger. Workers do it themselves "
        "when they first use the ledger; run this to do it by hand (e.g. before a deployment). "
        "Safe to run at any time, from several machines at once.",
        allow_abbrev=False,
    )
    migrate.add_argument(
        "url", metavar="URL", nargs="?", help="the database's postgresql:// URL (default: TARASH_LEDGER)"
    )
    migrate.set_defaults(func=command("_jobs", "migrate"))


# ----------------------------------------------------------------------------------------------
# Commands
# ----------------------------------------------------------------------------------------------


def _ledger() -> LedgerAdapter:
    # lazy: `tarash --help` and usage errors start without loading the library
    from .._ledger import active_ledger
    from ._errors import UsageError

    ledger = active_ledger()
    if ledger is None:
        raise UsageError(
            "the job ledger is off (TARASH_LEDGER=off, or its file cannot be written): no jobs are recorded"
        )
    return ledger


def _record(key: str) -> JobRecord:
    # lazy: `tarash --help` and usage errors start without loading the library
    from ._errors import UsageError

    ledger = _ledger()
    record = ledger.store.get(key)
    if record is None:
        raise UsageError(f"no job {key!r} in the ledger ({ledger.store!r})")
    return record


def _print_json(value: Any) -> None:
    print(json.dumps(value, ensure_ascii=False))


def _when(record: JobRecord) -> str:
    return record.created_at.strftime("%Y-%m-%d %H:%M:%S")


def _cost(record: JobRecord) -> str:
    """``0.40 USD`` (``~`` before an estimate; ``billed`` the provider's figure), ``-`` unknown."""
    if record.billed:
        return f"{record.billed.get('amount')} {record.billed.get('currency')} billed"
    if not record.cost:
        return "-"
    mark = "~" if record.cost.get("kind") == "estimate" else ""
    return f"{mark}{record.cost.get('amount')} {record.cost.get('currency')}"


def _state(record: JobRecord) -> str:
    return record.state if record.finished else f"{record.state}*"


def list_jobs(args: argparse.Namespace) -> int:
    """The ledger's jobs as a table (``*``: not collected yet) or JSON."""
    # lazy: `tarash --help` and usage errors start without loading the library
    from ..serialization import to_dict
    from ._listing import table

    ledger = _ledger()
    records = ledger.store.records(args.state)
    if args.json_output:
        _print_json([to_dict(record) for record in records])
        return EXIT_OK
    if not records:
        total = len(ledger.store.records()) if args.state else 0
        if total:
            print(f"No jobs in state {args.state!r} ({total} in the ledger: `tarash jobs list` shows them).")
        else:
            print(f"No jobs in the ledger ({ledger.store!r}).")
        return EXIT_OK
    headers = ("KEY", "PROVIDER", "MODEL", "STATE", "JOB ID", "COST", "CREATED (UTC)")
    rows = [(r.key, r.provider, r.model, _state(r), r.job_id or "-", _cost(r), _when(r)) for r in records]
    for line in table(headers, rows):
        print(line)
    if any(not r.finished for r in records):
        print("* not collected yet: `tarash jobs resume` collects it")
    if any(r.cost and r.cost.get("kind") == "estimate" and not r.billed for r in records):
        print("~ an estimate: what the price in effect gives for the job, not a provider's bill")
    return EXIT_OK


def _outputs(result: dict[str, Any] | None) -> list[str]:
    if not result:
        return []
    video = result.get("video")
    if isinstance(video, dict):
        return [f"<{video.get('size')} bytes of {video.get('content_type')}, not stored>"]
    if isinstance(video, str):
        return [video]
    images = result.get("images")
    return [str(image) for image in images] if isinstance(images, list) else []


def status(args: argparse.Namespace) -> int:
    """One job's record, history and (unless ``--offline``) its provider's current status."""
    # lazy: `tarash --help` and usage errors start without loading the library
    from ..jobs import JobHandle
    from ..serialization import to_dict

    ledger = _ledger()
    record = _record(args.key)
    events = ledger.store.events(record.key)
    live: Any = None
    live_error: str | None = None
    if not args.offline and not record.finished and record.job is not None:
        # lazy: `tarash --help` and usage errors start without loading the library
        from ..exceptions import TarashException

        try:
            live = JobHandle.from_record(record).status()
        except TarashException as exc:
            live_error = str(exc)
    if args.json_output:
        _print_json(
            {
                "record": to_dict(record),
                "events": [to_dict(e) for e in events],
                "live": to_dict(live) if live is not None else None,
                "live_error": live_error,
            }
        )
        return EXIT_OK
    fields = [
        ("key", record.key),
        ("provider", record.provider),
        ("model", record.model),
        ("modality", record.modality),
        ("state", record.state),
        ("collected", "yes" if record.finished else "no"),
        ("job id", record.job_id or "-"),
        ("created", f"{_when(record)} UTC"),
        ("cost", _cost(record)),
    ]
    fields += [("output", output) for output in _outputs(record.result)]
    if record.error:
        fields.append(("error", f"{record.error.get('type')}: {record.error.get('message')}"))
    if record.cancel:
        fields.append(("cancel", f"{record.cancel.get('outcome')} ({record.cancel.get('reason')})"))
    if live is not None:
        percent = f" {live.progress_percent:g}%" if live.progress_percent is not None else ""
        fields.append(("provider says", f"{live.state}{percent}"))
    if live_error is not None:
        fields.append(("provider says", f"error: {live_error}"))
    width = max(len(name) for name, _ in fields)
    for name, value in fields:
        print(f"{name + ':':<{width + 1}} {value}")
    print("history:")
    for event in events:
        state = f" {event.state}" if event.state and event.state != event.kind else ""
        print(f"  {event.at.strftime('%Y-%m-%d %H:%M:%S')}  {event.kind}{state}")
    return EXIT_OK


def _outcome_line(outcome: JobOutcome) -> str:
    head = f"{outcome.state:<10} {outcome.key}  {outcome.provider}/{outcome.model}"
    if outcome.job_id:
        head += f"  job {outcome.job_id}"
    if outcome.response is not None:
        video = getattr(outcome.response, "video", None)
        shown = video if isinstance(video, str) else None
        images = getattr(outcome.response, "images", None)
        if images:
            shown = ", ".join(images)
        return f"{head}  -> {shown or '<media bytes>'}"
    if outcome.error is not None:
        return f"{head}: {' '.join(str(outcome.error).split())}"
    if outcome.state == "claimed":
        return f"{head}: another process is collecting it"
    return head


def resume(args: argparse.Namespace) -> int:
    """Collect unfinished jobs; one line per job and a summary (or JSON)."""
    # lazy: `tarash --help` and usage errors start without loading the library
    from ..jobs import resume as resume_jobs
    from ..serialization import to_dict

    _ledger()
    outcomes = resume_jobs(args.key, timeout=args.timeout)
    bad = [o for o in outcomes if o.state not in ("completed", "claimed")]
    if args.json_output:
        _print_json([to_dict(outcome) for outcome in outcomes])
        return EXIT_PROVIDER_FAILURE if bad else EXIT_OK
    if not outcomes:
        print(
            f"Nothing to resume: job {args.key} is already collected."
            if args.key
            else "Nothing to resume: every recorded job is collected."
        )
        return EXIT_OK
    for outcome in outcomes:
        print(_outcome_line(outcome))
    counts: Counter[str] = Counter(outcome.state for outcome in outcomes)
    order = ("completed", "failed", "cancelled", "unknown", "not_found", "unfinished", "claimed")
    print(", ".join(f"{counts[state]} {state}" for state in order if counts[state]))
    return EXIT_PROVIDER_FAILURE if bad else EXIT_OK


def cancel(args: argparse.Namespace) -> int:
    """Ask the provider to cancel one job."""
    # lazy: `tarash --help` and usage errors start without loading the library
    from ..jobs import JobHandle
    from ._errors import UsageError

    record = _record(args.key)
    if record.finished:
        raise UsageError(f"job {record.key} is already finished ({record.state})")
    if record.job is None:
        raise UsageError(f"job {record.key} has no provider job id to cancel")
    cancelled = JobHandle.from_record(record).cancel()
    if args.json_output:
        _print_json({"key": record.key, "job_id": record.job_id, "cancelled": cancelled})
    elif cancelled:
        print(f"Cancelled job {record.job_id} ({record.key}) at {record.provider}.")
    else:
        print(f"{record.provider} cannot cancel jobs: job {record.job_id} keeps running.")
    return EXIT_OK if cancelled else EXIT_PROVIDER_FAILURE


def migrate(args: argparse.Namespace) -> int:
    """Bring a PostgreSQL ledger's schema up to date."""
    import os

    # lazy: `tarash --help` and usage errors start without loading the library
    from .._ledger.selection import DATABASE_URL_SCHEMES, _postgres_store
    from ._errors import UsageError

    url = args.url or os.environ.get("TARASH_LEDGER", "").strip()
    if not url.startswith(DATABASE_URL_SCHEMES):
        raise UsageError(
            "tarash jobs migrate upgrades a PostgreSQL ledger: pass its postgresql:// URL or set "
            "TARASH_LEDGER to it (a SQLite ledger upgrades itself)"
        )
    try:
        store = _postgres_store(url)
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    import psycopg

    try:
        before = store.schema_version()
        after = store.migrate()
    except psycopg.Error as exc:
        raise UsageError(f"cannot migrate {store!r}: {type(exc).__name__}: {exc}") from None
    finally:
        store.close()
    if before == after:
        print(f"The ledger schema in {store!r} is up to date (version {after}).")
    else:
        print(f"Migrated the ledger schema in {store!r} from version {before} to {after}.")
    return EXIT_OK


def download(args: argparse.Namespace) -> int:
    """Save a collected job's outputs and record their checksums."""
    import ssl

    # lazy: `tarash --help` and usage errors start without loading the library
    from .._outputs import download_outputs, saved_as_json
    from ..exceptions import TarashException
    from ..models import ImageGenerationResponse, VideoGenerationResponse
    from ..serialization import from_dict
    from ._errors import OutputError, UsageError

    record = _record(args.key)
    if record.state != "completed" or not record.result:
        raise UsageError(
            f"job {record.key} has no collected result ({record.state}): `tarash jobs resume` collects it"
        )
    response: ImageGenerationResponse | VideoGenerationResponse
    try:
        if record.modality == "image":
            response = from_dict(ImageGenerationResponse, record.result)
        else:
            response = from_dict(VideoGenerationResponse, record.result)
    except TarashException:
        raise UsageError(
            f"job {record.key}'s output was returned as bytes, which the ledger does not keep"
        ) from None
    verify: ssl.SSLContext | bool = True
    if args.ca_bundle:
        verify = ssl.create_default_context(cafile=args.ca_bundle)
    try:
        saved = download_outputs(response, args.out, verify=verify)
    except TarashException as exc:
        if exc.phase == "download":
            raise OutputError(str(exc)) from None
        raise
    if args.json_output:
        _print_json({"key": record.key, "job_id": record.job_id, "files": saved_as_json(saved)})
    else:
        for item in saved:
            print(f"{item.path}  {item.size} bytes  sha256 {item.sha256}")
    return EXIT_OK
