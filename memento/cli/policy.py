"""`memento policy ...`: inspect a saved case-selection policy and what it has learned about the cases.

The policy itself says what it has learned: `policy.summary()` (its size, replay buffer, recent
loss) and `policy.usefulness(cases)` (a task-independent score per case, higher is more useful).
"""

from pathlib import Path
from typing import Annotated, Any, Optional, Sequence

import typer

from memento.bank import CaseBank
from memento.case import Case
from memento.cli.banks import open_bank
from memento.cli.cases import summary
from memento.cli.options import BankPath, EmbedderName, filter_options
from memento.cli.output import output_options
from memento.plugins import plugin

app = typer.Typer(help="Inspect a learned case-selection policy.", no_args_is_help=True)

PolicyPath = Annotated[Path, typer.Argument(help="A policy checkpoint written by policy.save().", show_default=False)]


def usefulness(path: Path, bank: CaseBank, cases: Sequence[Case]) -> dict[str, float]:
    """The usefulness the policy at `path` has learned for each case, by case id."""
    scores = plugin("policies").load_policy(path, bank).usefulness(list(cases))
    return {case.id: float(score) for case, score in zip(cases, scores)}


@app.command(short_help="A policy's kind, size, training steps and recent loss.")
@output_options
def show(policy_path: PolicyPath, bank_path: BankPath, embedder: EmbedderName = None) -> dict[str, Any]:
    """Example: memento policy show policy.pt --bank cases.db

    What a saved policy is (kind, config, the embedder it was trained with, file size) and what
    it has learned: training steps, its size, and the recent loss, as the policy reports them.
    """
    with open_bank(bank_path, embedder) as bank:
        from memento.policy import read_checkpoint

        checkpoint = read_checkpoint(policy_path)
        policy = plugin("policies").load_policy(policy_path, bank)  # torch: only once the bank is known to be there
        return {"path": str(policy_path), "bytes": policy_path.stat().st_size, "kind": checkpoint["kind"],
                "embedder": checkpoint.get("embedder"), "config": checkpoint.get("config"), **policy.summary()}


@app.command(short_help="Rank cases by the usefulness a policy has learned.")
@output_options
@filter_options
def rank(policy_path: PolicyPath, bank_path: BankPath, embedder: EmbedderName = None,
         limit: Annotated[Optional[int], typer.Option(min=0, help="At most this many.")] = None,
         ascending: Annotated[bool, typer.Option(help="Least useful first (what `cases prune --policy` would take).")] = False,
         *, filters: dict) -> list[dict]:
    """Example: memento policy rank policy.pt --bank cases.db --limit 10 --table

    The cases that match the filters, most useful first by the policy's learned estimate
    (`usefulness`), next to their stored reward.
    """
    with open_bank(bank_path, embedder) as bank:
        cases = list(bank.iter_cases(**filters))
        scores = usefulness(policy_path, bank, cases)
    ranked = sorted(cases, key=lambda c: scores[c.id], reverse=not ascending)[:limit]
    return [{"usefulness": scores[c.id], **summary(c)} for c in ranked]
