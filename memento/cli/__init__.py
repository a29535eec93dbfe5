"""The `memento` command line: a thin skin over the library.

Every command is one library call: flags are named like its keyword arguments, output is JSON
by default (`--table` for a table, `--nl` for JSON lines), and a `MementoError` (a user error)
prints one line on stderr and exits with status 1, never a traceback; so does an `OSError` on a
file the user named (a folder that is missing, a directory, no permission, a full disk).
Usage errors exit with 2.

    memento init cases.db
    memento cases add cases.jsonl --bank cases.db
    memento cases search "who founded Acme" --bank cases.db --table
"""

import sqlite3
from pathlib import Path
from typing import Annotated, NoReturn

import click
import typer
from typer.core import TyperGroup

from memento.bank.integrity import storage_error
from memento.cli import agent, banks, cases, cleanup, distill, evals, policy, ui  # noqa: F401  (cleanup adds rm, dedup, prune to `cases`)
from memento.cli.banks import is_url, open_bank
from memento.cli.options import EmbedderName
from memento.cli.output import output_options
from memento.errors import BankError, MementoError

USER_ERROR_EXIT = 1


class MementoGroup(TyperGroup):
    """The root command: turns a user error from any subcommand into one line and exit status 1."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except MementoError as exc:
            fail(str(exc))
        except sqlite3.DatabaseError as exc:  # a storage fault met after the bank opened (a damaged page)
            failure = storage_error(None, exc)
            if failure is exc:
                raise  # not a storage fault: a bug, shown as one
            fail(str(failure))
        except UnicodeEncodeError as exc:  # an argument or file that is not UTF-8 reaches Python as lone surrogates
            fail(f"{exc.object[max(0, exc.start - 20):exc.end + 20]!r} is not valid UTF-8 text ({exc.reason}); "
                 "pass UTF-8 arguments and files")
        except OSError as exc:
            # The commands check the paths they are given; this catches what no check can see
            # coming (permissions, a full or read-only disk, a file removed meanwhile).
            fail(f"{exc}; check the paths given, their permissions and the free disk space")


def fail(message: str) -> NoReturn:
    """Print one `Error:` line on stderr and exit with status 1."""
    # One line, whatever a lower layer put in its message (a wrapped torch error has several).
    typer.echo("Error: " + " ".join(message.split()), err=True)
    raise typer.Exit(USER_ERROR_EXIT) from None


app = typer.Typer(cls=MementoGroup, no_args_is_help=True, add_completion=False, rich_markup_mode="markdown",
                  pretty_exceptions_show_locals=False,
                  help="Inspect, search, edit and curate an agent's case memory.")


@app.command(short_help="Create a new, empty case bank.")
@output_options
def init(path: Annotated[str, typer.Argument(help="The bank file, or a postgresql:// URL, to create.",
                                              show_default=False)],
         embedder: EmbedderName = None,
         index: Annotated[str, typer.Option(help="flat (exact search) or hnsw (approximate, for big banks); "
                                                 "on PostgreSQL also ivfflat.")] = "flat",
         ) -> dict:
    """Example: memento init cases.db

    Create an empty bank at PATH, recording its embedder (every later command must use the
    same one). The only command that creates a bank: the others refuse a path that does not exist.
    PATH may be a URL, `postgresql://user@host/db?schema=team_a`, which creates the bank in that schema.
    """
    if not is_url(path) and Path(path).exists():
        raise BankError(f"'{path}' already exists; nothing was changed (use it with --bank {path}, or choose a new path)")
    with open_bank(path, embedder, create=True, index=index) as bank:
        if is_url(path) and len(bank):
            raise BankError(f"a bank with {len(bank)} cases already exists at {bank.path}; nothing was changed "
                            f"(use it with --bank, or choose another schema)")
        return {"path": str(bank.path), "embedder": bank.embedder_name, "dim": bank.dim, "index": bank.index_config.kind}


app.add_typer(cases.app, name="cases")
app.add_typer(banks.app, name="bank")
app.add_typer(policy.app, name="policy")
app.command(short_help="Run the agent once on a question and show the cases it used.")(agent.ask)
app.add_typer(evals.app, name="eval")
app.command(short_help="Serve a web inspector of the bank and the eval runs.")(ui.ui)
app.add_typer(distill.app, name="distill")


def main() -> None:
    """The `memento` console script."""
    app()
