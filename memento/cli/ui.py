"""`memento ui`: serve the web inspector over a bank (and, optionally, eval runs) on this machine."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from memento.cli.options import BankPath, EmbedderName
from memento.cli.output import output_options


@output_options
def ui(bank_path: BankPath, embedder: EmbedderName = None,
       runs: Annotated[Optional[Path], typer.Option(
           help="A run folder of `memento eval run`, or a folder holding several.", show_default=False)] = None,
       policy: Annotated[Optional[Path], typer.Option(
           help="A policy checkpoint: its usefulness scores and its choice of cases (default: similarity).",
           show_default=False)] = None,
       host: Annotated[str, typer.Option(help="Address to listen on; anything but loopback needs --token.")] = "127.0.0.1",
       port: Annotated[int, typer.Option(help="TCP port.")] = 8765,
       token: Annotated[Optional[str], typer.Option(
           envvar="MEMENTO_UI_TOKEN", help="A secret every request must carry (at least 16 characters). "
                                           "Env: MEMENTO_UI_TOKEN.", show_default=False)] = None,
       k: Annotated[int, typer.Option("-k", "--k", help="Cases the agent is shown, for the preview.")] = 4,
       check: Annotated[bool, typer.Option(
           "--check", help="Check the settings, the bank and the extra, print what would be served, and exit.")] = False,
       ) -> dict | None:
    """Example: memento ui --bank cases.db --check

    Serve a web inspector (`memento ui --bank cases.db --runs runs/ --policy policy.pt`, then open
    http://127.0.0.1:8765/): the cases (search, filters), each case with what the agent would be
    shown for a task and the policy's usefulness beside similarity, editing, delete and restore,
    merging near-duplicates, the runs (plots, per-arm tables with confidence intervals) and each
    episode's trace, and a JSON API under /api/. Listens on loopback; another --host needs a
    --token. Needs the extra `memento[ui]`. Runs until Ctrl-C; --check only checks and exits.
    """
    from memento.ui import UIConfig, describe, serve

    config = UIConfig(bank=str(bank_path), runs=runs, policy=policy, embedder=embedder, host=host, port=port,
                      token=token, k=k).check()
    if check:
        return describe(config)
    serve(config)
    return None
