"""`memento cases rm | dedup | prune`: the commands that remove cases.

Each removal first writes the removed cases, with their embeddings, to a trash file beside the
bank (`<bank>.trash/<time>-<command>.jsonl`); `memento cases import FILE` puts them back.
"""

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from memento.bank import CaseBank
from memento.case import Case
from memento.cli.banks import move_to_trash, open_bank
from memento.cli.cases import app, summary
from memento.bank.curate import find_duplicates
from memento.cli.options import BankPath, DryRun, EmbedderName, Yes, filter_options, parse_duration, time_before_now
from memento.cli.output import note, output_options
from memento.errors import ValidationError


def remove(bank: CaseBank, cases: list[Case], reason: str, *, dry_run: bool, yes: bool) -> Any:
    """Trash and delete `cases` after a confirmation; on a dry run, list them and change nothing."""
    if dry_run:
        note(f"dry run: {len(cases)} case(s) would be removed; nothing was changed")
        return [summary(c) for c in cases]
    if not cases:
        note("no case matched; nothing was removed")
        return {"deleted": 0}
    if not yes:
        typer.confirm(f"Remove {len(cases)} case(s) from {bank.path}? (they are kept in a trash file)",
                      abort=True, err=True)
    result = move_to_trash(bank, [c.id for c in cases], reason)
    note(f"removed {result['deleted']} case(s); restore with: {result['restore']}")
    return result


@app.command(short_help="Remove cases by id or by filter (trashed first).")
@output_options
@filter_options
def rm(case_ids: Annotated[Optional[list[str]], typer.Argument(help="Ids of the cases to remove.", show_default=False)] = None,
       bank_path: BankPath = ..., embedder: EmbedderName = None, dry_run: DryRun = False, yes: Yes = False,
       *, filters: dict) -> Any:
    """Example: memento cases rm --where judge=broken --bank cases.db --yes

    Remove the cases with these ids, or every case matching the filters, after a confirmation
    (skip it with --yes). They are written to a trash file first; the command prints its path and
    the `memento cases import` line that restores them. --dry-run lists them and removes nothing.
    """
    if case_ids and filters:
        raise ValidationError("give case ids or filters, not both; nothing was removed")
    if not case_ids and not filters:
        raise ValidationError("rm needs case ids or at least one filter (--where, --namespace, --max-reward, ...); "
                              "to remove every case, delete the bank file")
    with open_bank(bank_path, embedder) as bank:
        cases = bank.get_many(list(dict.fromkeys(case_ids))) if case_ids else list(bank.iter_cases(**filters))
        return remove(bank, cases, "rm", dry_run=dry_run, yes=yes)


@app.command(short_help="Find near-duplicate cases and keep the best of each group.")
@output_options
def dedup(bank_path: BankPath, embedder: EmbedderName = None,
          threshold: Annotated[float, typer.Option(help="Cosine similarity of the tasks' embeddings at or above "
                                                        "which two cases are near-duplicates.")] = 0.95,
          namespace: Annotated[Optional[str], typer.Option(help="Only this namespace (default: each one separately).")] = None,
          apply: Annotated[bool, typer.Option(help="Remove the duplicates (trashed first); without it, only list them.")] = False,
          ) -> Any:
    """Example: memento cases dedup --bank cases.db --threshold 0.9

    Group near-duplicate cases (same namespace, task embeddings at least --threshold similar)
    and keep the best of each group: the highest reward, then the newest. Lists the groups and
    changes nothing unless --apply, which trashes and removes the others.
    """
    with open_bank(bank_path, embedder) as bank:
        groups = find_duplicates(bank, threshold, namespace=namespace, progress=sys.stderr.isatty())
        records = [g.as_record() for g in groups]
        if not apply:
            note(f"{sum(len(g.remove) for g in groups)} near-duplicate(s) in {len(groups)} group(s); "
                 f"nothing was changed (pass --apply to remove them)")
            return records
        removed = remove(bank, [c for g in groups for c in g.remove], "dedup", dry_run=False, yes=True)
    return {**removed, "groups": records}


@app.command(short_help="Remove old, low-reward or (by a policy) useless cases.")
@output_options
@filter_options
def prune(bank_path: BankPath, embedder: EmbedderName = None,
          older_than: Annotated[Optional[str], typer.Option(
              help="Created longer ago than this: 30m, 12h, 90d, 2w.", rich_help_panel="Prune by")] = None,
          policy: Annotated[Optional[Path], typer.Option(
              help="A learned policy checkpoint: prune by its usefulness estimate.", rich_help_panel="Prune by")] = None,
          max_usefulness: Annotated[Optional[float], typer.Option(
              help="With --policy: prune cases the policy rates at most this useful.", rich_help_panel="Prune by")] = None,
          dry_run: DryRun = False, yes: Yes = False, *, filters: dict) -> Any:
    """Example: memento cases prune --older-than 90d --max-reward 0 --bank cases.db --dry-run

    Remove the cases that meet every criterion given: older than --older-than, reward at most
    --max-reward, usefulness at most --max-usefulness by the --policy checkpoint (other filters
    narrow the set). Trashed first and confirmed as in `rm`.
    """
    if (policy is None) != (max_usefulness is None):
        raise ValidationError("--policy and --max-usefulness go together: the policy rates the cases, "
                              "the threshold says which to prune")
    if older_than is None and policy is None and "max_reward" not in filters:
        raise ValidationError("prune needs a criterion: --older-than, --max-reward, or --policy with --max-usefulness")
    if older_than is not None:
        if "until" in filters:
            raise ValidationError("--older-than and --until both set a creation cutoff; give one of them")
        filters["until"] = time_before_now(parse_duration(older_than), "--older-than")
    with open_bank(bank_path, embedder) as bank:
        cases = list(bank.iter_cases(**filters))
        if policy is not None:
            from memento.cli.policy import usefulness

            scores = usefulness(policy, bank, cases)
            cases = [c for c in cases if scores[c.id] <= max_usefulness]
        return remove(bank, cases, "prune", dry_run=dry_run, yes=yes)
