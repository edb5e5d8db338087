"""``tarash costs reconcile``: what the provider billed for the ledger's jobs, beside the estimates.

Only the standard library is imported here; the command imports the costs API when it runs, so
``tarash --help`` stays fast.
"""

from __future__ import annotations

import argparse
import os

from ._parser import EXIT_OK, SubParsers, command

__all__ = ["add_parser", "reconcile"]


def add_parser(subparsers: SubParsers) -> None:
    """Add ``tarash costs`` and its sub-command."""
    costs = subparsers.add_parser("costs", help="what generations cost: reconcile with the provider's bill")
    commands = costs.add_subparsers(dest="costs_command", metavar="COMMAND", required=True)
    reconcile_parser = commands.add_parser(
        "reconcile",
        help="record what the provider billed for the ledger's jobs beside their estimates",
        description="Read the provider's billing records for the ledger's jobs (fal: "
        "GET /v1/models/billing-events, which needs an ADMIN key) and record the billed amounts "
        "beside the estimates (`tarash jobs list` shows them).",
    )
    reconcile_parser.add_argument("--provider", default="fal", help="the provider (default: fal)")
    reconcile_parser.add_argument(
        "--admin-key",
        metavar="KEY",
        help="the provider's admin key (default: the environment variable <PROVIDER>_ADMIN_KEY, "
        "e.g. FAL_ADMIN_KEY; prefer it, command lines are visible to other local users)",
    )
    reconcile_parser.add_argument("--base-url", metavar="URL", help="the API root (a proxy, a local server)")
    reconcile_parser.add_argument(
        "--ca-bundle", metavar="PEM", help="trust this CA (a proxy, a local server)"
    )
    reconcile_parser.set_defaults(func=command("_costs", "reconcile"))


def reconcile(args: argparse.Namespace) -> int:
    """Reconcile and print one line per job found billed: key, job id, estimate, billed."""
    # lazy: `tarash --help` and usage errors start without loading the library
    from ..costs import reconcile as read_bills
    from ._errors import UsageError
    from ._listing import table

    variable = f"{args.provider.upper().replace('-', '_')}_ADMIN_KEY"
    admin_key = args.admin_key or os.environ.get(variable)
    if not admin_key:
        raise UsageError(f"an admin key is needed: pass --admin-key or set {variable}")
    found = read_bills(
        args.provider,
        admin_key=admin_key,
        base_url=args.base_url,
        provider_config={"ca_bundle": args.ca_bundle} if args.ca_bundle else None,
    )
    if not found:
        print(f"No billing records found for the ledger's {args.provider} jobs.")
        return EXIT_OK
    rows = [
        (
            job.key,
            job.job_id,
            "-" if job.estimate is None else f"{job.estimate.amount} {job.estimate.currency}",
            f"{job.billed.amount} {job.billed.currency}",
        )
        for job in found
    ]
    for line in table(("KEY", "JOB ID", "ESTIMATE", "BILLED"), rows):
        print(line)
    return EXIT_OK
