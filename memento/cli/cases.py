"""`memento cases ...`: look at, search, add, edit, export and import the cases in a bank.

The removing commands (rm, dedup, prune) are in `memento/cli/cleanup.py`.
"""

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import click
import typer

from memento.case import Case
from memento.cli.banks import open_bank, resolve_embedder
from memento.cli.editing import (EDIT_FORMATS, changes_from_assignments, changes_from_document, parse_document,
                                 render)
from memento.cli.options import BankPath, EmbedderName, filter_options, readable_file, writable_file
from memento.cli.output import note, output_options
from memento.errors import ValidationError
from memento.plugins import plugin

app = typer.Typer(help="Inspect, search, edit and curate the cases in a bank.", no_args_is_help=True)

CaseId = Annotated[str, typer.Argument(help="A case id (see `memento cases ls`).", show_default=False)]


def summary(case: Case) -> dict[str, Any]:
    """The fields of a case that fit on a line: everything but the plan and the trajectory."""
    return {"id": case.id, "namespace": "/".join(case.namespace), "task": case.task, "answer": case.answer,
            "reward": case.reward, "created_at": case.created_at.isoformat(), "metadata": case.metadata}


def whole(case: Case) -> dict[str, Any]:
    """The whole case, as `export` writes it and `import` reads it."""
    return case.model_dump(mode="json")


@app.command(short_help="List the cases that match the filters.")
@output_options
@filter_options
def ls(bank_path: BankPath, embedder: EmbedderName = None,
       order_by: Annotated[str, typer.Option(help="created_at, updated_at, reward, id or task.")] = "created_at",
       descending: Annotated[bool, typer.Option(help="Largest first.")] = False,
       limit: Annotated[Optional[int], typer.Option(min=0, help="At most this many.")] = None,
       offset: Annotated[int, typer.Option(min=0, help="Skip this many first.")] = 0,
       full: Annotated[bool, typer.Option(help="Whole cases, with plan and trajectory.")] = False,
       *, filters: dict) -> list[dict]:
    """Example: memento cases ls --bank cases.db --min-reward 1 --order-by reward --descending --limit 20 --table

    List the cases that match the filters (all of them by default), oldest first.
    """
    with open_bank(bank_path, embedder) as bank:
        shape = whole if full else summary
        return [shape(c) for c in bank.iter_cases(order_by=order_by, descending=descending, limit=limit,
                                                   offset=offset, **filters)]


@app.command(short_help="Show whole cases: plan, trajectory, answer, reward.")
@output_options
def show(case_ids: Annotated[list[str], typer.Argument(help="One or more case ids.", show_default=False)],
         bank_path: BankPath, embedder: EmbedderName = None) -> dict | list[dict]:
    """Example: memento cases show acme-1 --bank cases.db

    Show whole cases with their plan and trajectory; one id prints one object, several a list.
    """
    with open_bank(bank_path, embedder) as bank:
        cases = [whole(c) for c in bank.get_many(case_ids)]
    return cases[0] if len(cases) == 1 else cases


@app.command(short_help="The cases most similar to a text, with scores.")
@output_options
@filter_options
def search(query: Annotated[str, typer.Argument(help="The text to search for.", show_default=False)],
           bank_path: BankPath, embedder: EmbedderName = None,
           k: Annotated[int, typer.Option("-k", "--k", help="How many cases.")] = 8,
           policy: Annotated[Optional[Path], typer.Option(
               help="A policy checkpoint: let it choose the k cases and show its score too.")] = None,
           *, filters: dict) -> list[dict]:
    """Example: memento cases search "who founded Acme" --bank cases.db -k 3 --table

    The k cases whose tasks are most similar to QUERY, with their cosine similarity as `score`.
    With --policy the policy chooses the k cases (as the agent would, without exploring) and
    `policy_score` is its score for each; only --namespace combines with it.
    """
    with open_bank(bank_path, embedder) as bank:
        if policy is None:
            return [{"score": hit.score, **summary(hit.case)} for hit in bank.search(query, k=k, **filters)]
        from memento.policy import TaskState

        other = sorted(set(filters) - {"namespace"})
        if other:
            raise ValidationError(f"--policy chooses among all cases of a namespace, so it does not combine with "
                                  f"{', '.join('--' + f.replace('_', '-') for f in other)}; drop them or drop --policy")
        chosen = plugin("policies").load_policy(policy, bank).select(TaskState.from_task(bank, query), k=k,
                                                  namespace=filters.get("namespace"), explore=False)
        return [{"policy_score": s.score, "score": s.similarity, **summary(s.case)} for s in chosen]


@app.command(short_help="Add cases from a JSON or JSONL file, or stdin.")
@output_options
def add(source: Annotated[str, typer.Argument(
            help="A .json file (one case or a list of cases), a JSONL file (a case a line), or - for stdin.")] = "-",
        bank_path: BankPath = ..., embedder: EmbedderName = None,
        namespace: Annotated[Optional[str], typer.Option(
            help="Namespace for cases that do not give one, e.g. acme/support.")] = None) -> list[dict]:
    """Example: memento cases add new_cases.jsonl --bank cases.db

    Add cases (each needs at least a task); their tasks are embedded. Every case is checked
    before anything is stored. Prints the ids given to the new cases.
    """
    records = read_records(source)
    if namespace is not None:
        records = [{"namespace": namespace, **r} if isinstance(r, dict) else r for r in records]
    with open_bank(bank_path, embedder) as bank:
        added = bank.add_many(records)
    return [{"id": c.id, "task": c.task} for c in added]


def read_records(source: str) -> list:
    """The cases in a JSON document (an object or a list) or in JSON lines, from a file or stdin."""
    if source == "-":
        name = "stdin"
        try:
            text = sys.stdin.read()
        except UnicodeDecodeError as exc:
            raise ValidationError(f"stdin is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                  f"pipe in JSON or JSONL encoded as UTF-8") from None
    else:
        path = readable_file(source)
        name = f"'{source}'"
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise ValidationError(f"{name} is not UTF-8 text ({exc.reason} at byte {exc.start}); give a JSON or JSONL file") from None
    if not text.strip():
        raise ValidationError(f"{name} holds no cases; give a JSON object, a JSON list, or one JSON object a line")
    try:
        document = json.loads(text)
        return document if isinstance(document, list) else [document]
    except json.JSONDecodeError:
        pass  # not one JSON document: read it as JSON lines
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValidationError(f"{name} line {number} is not JSON ({exc}); nothing was added") from None
    return records


@app.command(short_help="Edit a case in $EDITOR, or set fields with --set.")
@output_options
def edit(case_id: CaseId, bank_path: BankPath, embedder: EmbedderName = None,
         set_: Annotated[Optional[list[str]], typer.Option(
             "--set", help="field=value, or metadata.key=value (repeatable); values are read as JSON when they parse.")] = None,
         fmt: Annotated[str, typer.Option("--format", help="Edit as json or yaml.")] = "json") -> dict:
    """Example: memento cases edit acme-1 --set reward=0 --set metadata.note=wrong-answer --bank cases.db

    Without --set, open the case in $EDITOR (as JSON, or YAML with --format yaml). The edit is
    validated as a whole before it is saved; a new task text is re-embedded. Prints the case.
    """
    if fmt not in EDIT_FORMATS:
        raise ValidationError(f"--format {fmt!r}: edit as {' or '.join(EDIT_FORMATS)}")
    with open_bank(bank_path, embedder) as bank:
        old = bank.get(case_id)
        if set_:
            changes = changes_from_assignments(old, set_)
        else:
            try:
                text = click.edit(render(old, fmt), extension=f".{fmt}", require_save=True)
            except click.ClickException as exc:  # no such editor, or it failed
                raise ValidationError(f"{exc.format_message()}; nothing was changed; set $EDITOR to an installed "
                                      f"editor, or change fields with --set field=value") from None
            changes = {} if text is None else changes_from_document(old, parse_document(text, fmt))
        if not changes:
            note(f"case {case_id!r} unchanged")
            return whole(old)
        new = bank.update(case_id, **changes)
    note(f"case {case_id!r} updated: {', '.join(sorted(changes))}" + (" (re-embedded)" if "task" in changes else ""))
    return whole(new)


@app.command(short_help="Write cases as JSON lines (to a file or stdout).")
@output_options
@filter_options
def export(destination: Annotated[str, typer.Argument(help="A file to write, or - for stdout.")] = "-",
           bank_path: BankPath = ..., embedder: EmbedderName = None,
           with_vectors: Annotated[bool, typer.Option(
               help="Include each case's embedding, so an import needs no re-embedding.")] = False,
           *, filters: dict) -> dict | None:
    """Example: memento cases export backup.jsonl --bank cases.db --namespace acme

    Write the cases that match the filters as JSON lines, the format `memento cases import` reads.
    """
    path = None if destination == "-" else writable_file(destination)
    with open_bank(bank_path, embedder) as bank:
        if path is None:
            bank.export_jsonl(sys.stdout, with_vectors=with_vectors, **filters)
            return None
        count = bank.export_jsonl(path, with_vectors=with_vectors, **filters)
    return {"exported": count, "path": destination}


@app.command("import", short_help="Add cases from JSON lines, all or nothing.")
@output_options
def import_(source: Annotated[str, typer.Argument(help="A JSONL file (an export or a trash file), or - for stdin.",
                                                  show_default=False)],
            bank_path: BankPath, embedder: EmbedderName = None,
            skip_bad_lines: Annotated[bool, typer.Option(help="Leave out malformed lines instead of failing.")] = False,
            on_conflict: Annotated[str, typer.Option(
                help="An id the bank already has: error (import nothing) or skip (leave that line out).")] = "error",
            ) -> dict:
    """Example: memento cases import backup.jsonl --bank cases.db --on-conflict skip

    Import cases from JSON lines in one transaction: a malformed line fails the whole import
    (naming the line) unless --skip-bad-lines. Lines with an embedding are not re-embedded,
    so a trash file from `rm` or `prune` restores exactly.
    """
    path = None if source == "-" else readable_file(source, "a JSONL file, as export or rm writes")
    with open_bank(bank_path, embedder) as bank:
        try:
            count = bank.import_jsonl(sys.stdin if path is None else path,
                                      skip_bad_lines=skip_bad_lines, on_conflict=on_conflict)
        except UnicodeDecodeError as exc:  # raised while the file is read, before anything is written
            raise ValidationError(f"'{source}' is not UTF-8 text ({exc.reason} at byte {exc.start}); "
                                  f"nothing was imported; give a JSONL file") from None
    return {"imported": count}


@app.command(short_help="Counts per namespace and dataset, rewards, index health.")
@output_options
def stats(bank_path: BankPath, embedder: EmbedderName = None) -> dict:
    """Example: memento cases stats --bank cases.db

    Counts per namespace and per dataset (metadata key `dataset`), the reward distribution,
    the embedder, and the health of the FAISS index (vectors against rows, generations).
    """
    with open_bank(bank_path, embedder) as bank:
        return bank.stats()


@app.command(short_help="Rebuild the index, or re-embed every case with another model.")
@output_options
def reindex(bank_path: BankPath, embedder: EmbedderName = None,
            re_embed: Annotated[Optional[str], typer.Option(
                "--re-embed", metavar="MODEL",
                help="Re-embed every task with this model (a folder or known name); it becomes the bank's embedder.")] = None,
            ) -> dict:
    """Example: memento cases reindex --bank cases.db

    Rebuild the FAISS index from the embeddings stored in SQLite; with --re-embed MODEL,
    compute every case's embedding again with MODEL first (all or nothing).
    """
    with open_bank(bank_path, embedder) as bank:
        bank.reindex(resolve_embedder(re_embed) if re_embed else None, progress=sys.stderr.isatty())
        report = bank.stats()
    return {"embedder": report["embedder"], "index": report["index"]}
