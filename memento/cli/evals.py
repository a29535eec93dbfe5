"""`memento eval run | report`: the continual-learning eval runner of `evals/`, from the command line."""

import sys
from pathlib import Path
from typing import Annotated, Any, Optional

import pydantic
import typer

from memento.cli.banks import resolve_embedder
from memento.cli.options import EmbedderName
from memento.cli.output import note, output_options
from memento.errors import DataError, MementoError, NotFoundError, ValidationError
from memento.plugins import plugin

app = typer.Typer(help="Run the continual-learning evals and read their results.", no_args_is_help=True)

OVERRIDES = "Overrides of the config"


@app.command(short_help="Run (or resume) an eval: arms side by side over passes of tasks.")
@output_options
def run(config: Annotated[Optional[Path], typer.Argument(
            help="An eval config, .yaml or .json (see evals/config.py); flags override it.", show_default=False)] = None,
        embedder: EmbedderName = None,
        out_dir: Annotated[Optional[Path], typer.Option(help="The run folder.", rich_help_panel=OVERRIDES)] = None,
        source: Annotated[Optional[str], typer.Option(
            help="Task source: fictional, qa, deepresearcher, simpleqa, gaia or hle.", rich_help_panel=OVERRIDES)] = None,
        limit: Annotated[Optional[int], typer.Option(help="Use this many tasks.", rich_help_panel=OVERRIDES)] = None,
        arms: Annotated[Optional[list[str]], typer.Option(
            "--arm", help="An arm (repeatable): none, similarity, neural, neural-copy, episodic.", rich_help_panel=OVERRIDES)] = None,
        iterations: Annotated[Optional[int], typer.Option(help="Passes over the tasks.", rich_help_panel=OVERRIDES)] = None,
        concurrency: Annotated[Optional[int], typer.Option(help="Episodes in flight at once.", rich_help_panel=OVERRIDES)] = None,
        backend: Annotated[Optional[str], typer.Option(
            envvar="MEMENTO_LLM_BACKEND", help="The agent's LLM backend (llamacpp, openai, vllm, transformers). "
                                               "Env: MEMENTO_LLM_BACKEND.", rich_help_panel=OVERRIDES)] = None,
        ) -> list[dict]:
    """Example: memento eval run --source fictional --limit 4 --arm none --arm neural --iterations 2 --out-dir runs/demo

    Run the eval a config describes (the defaults without one), flags overriding it; a folder
    that holds part of the same run is resumed (episodes that errored are retried). Writes
    episodes.jsonl, summary.json, report.md and the plots into the run folder and prints accuracy
    per arm and pass; exits with 1 and one `Error:` line if any episode errored.
    """
    evals = plugin("evals")
    settings = evals.load_config(config).model_dump() if config else {}
    tasks = {"source": source, "limit": limit}
    settings["tasks"] = {**settings.get("tasks", {}), **{k: v for k, v in tasks.items() if v is not None}}
    if backend is not None:
        settings["llm"] = {**settings.get("llm", {}), "backend": backend}
    given = {"out_dir": out_dir, "arms": arms, "iterations": iterations, "concurrency": concurrency}
    settings.update({key: value for key, value in given.items() if value is not None})
    try:
        eval_config = evals.EvalConfig.model_validate(settings)
    except pydantic.ValidationError as exc:
        raise ValidationError(f"invalid eval settings: {exc.errors()[0]['msg']} "
                              f"(at {'.'.join(map(str, exc.errors()[0]['loc'])) or 'the config'})") from None
    summary = evals.run_eval(eval_config, progress=sys.stderr.isatty(), embedder=resolve_embedder(embedder) if embedder else None)
    failed = evals.error_line(summary, resume=f"run `memento eval run` with the same config and --out-dir {summary.run_dir}")
    if failed:
        raise MementoError(failed)
    note(f"{summary.episodes}/{summary.expected_episodes} episodes; report: {Path(summary.run_dir) / 'report.md'}")
    return rows(summary, "iteration")


@app.command(short_help="The results of a finished (or partial) run, by pass, source or domain.")
@output_options
def report(run_dir: Annotated[Path, typer.Argument(help="A run folder written by `memento eval run`.", show_default=False)],
           by: Annotated[str, typer.Option(help="iteration, source or domain.")] = "iteration") -> list[dict]:
    """Example: memento eval report runs/demo --by source

    The accuracy rows of a run's summary.json: per arm and pass, per task source, or per domain.
    """
    path = run_dir / "summary.json"
    if not path.is_file():
        raise NotFoundError(f"'{path}' does not exist; run the eval first (`memento eval run ... --out-dir {run_dir}`)")
    try:
        summary = plugin("evals").EvalSummary.model_validate_json(path.read_bytes())
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = f" at {'.'.join(map(str, first['loc']))}" if first["loc"] else ""
        raise DataError(f"'{path}' is not a summary written by `memento eval run` ({first['msg']}{where}); "
                        f"run the eval again to rewrite it, "
                        f"e.g. `memento eval run ... --out-dir {run_dir}` (finished episodes are kept)") from None
    return rows(summary, by)


def rows(summary: Any, by: str) -> list[dict]:
    """One of the summary's tables as rows."""
    tables = {"iteration": summary.by_iteration, "source": summary.by_source, "domain": summary.by_domain}
    if by not in tables:
        raise ValidationError(f"--by {by!r}: choose iteration, source or domain")
    return [row.model_dump(mode="json") for row in tables[by]]
