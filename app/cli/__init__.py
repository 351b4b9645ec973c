"""Operator commands: `payletter-gateway serve | migrate | check-config | webhooks … |
orders list/show/export/cancel/sync | deliveries replay | reconcile`.

Every command reads the service's own settings (DATABASE_URL, PAYLETTER_*, …). Bad input
exits 2, a failure 1, each with one line on stderr (never a traceback). `--json` prints JSON,
and only JSON, on stdout; prompts, progress and notes go to stderr.

One module per command group: common.py (the shared plumbing), serve.py (serve, migrate,
check-config), orders.py, deliveries.py, webhooks.py, reconcile.py; formatting.py for text.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

import click

from app.cli import deliveries, orders, reconcile, serve, webhooks
from app.cli.common import CliContext

__all__ = ["CliContext", "cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option("-v", "--verbose", is_flag=True, help="Log at INFO level (stderr).")
def cli(verbose: bool) -> None:
    """Operate the Payletter gateway: the service, its database, orders, webhooks."""
    if verbose:
        logging.getLogger().setLevel(logging.INFO)


for command in (serve.serve, serve.migrate, serve.check_config, webhooks.webhooks,
                reconcile.reconcile_day, orders.orders, deliveries.deliveries):
    cli.add_command(command)


def main(argv: Sequence[str] | None = None) -> int:
    """The console script. Returns the exit code; bad usage exits 2 (as argparse did)."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        result = cli.main(args=list(argv) if argv is not None else None,
                          prog_name="payletter-gateway", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        raise SystemExit(exc.exit_code) from None
    except click.Abort:
        click.echo("Aborted!", err=True)
        return 1
    except BrokenPipeError:  # `… | head`: stop quietly
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 1
    return result if isinstance(result, int) else 0


