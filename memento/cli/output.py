"""How every command prints: JSON by default, `--nl` for one JSON object per line, `--table` for a rich table.

Commands return plain data (a dict or a list of dicts) and `@output_options` prints it, so the
choice of format lives in one place. Data goes to stdout; notes, prompts and progress to stderr.
"""

import json
import sys
from typing import Annotated, Any, Callable

import typer

from memento.cli.options import keyword_parameter, extend_signature

OUTPUT_PARAMETERS = [
    keyword_parameter("table", Annotated[bool, typer.Option("--table", "-t", help="Print a table instead of JSON.",
                                                   rich_help_panel="Output")], False),
    keyword_parameter("nl", Annotated[bool, typer.Option("--nl", help="Print one JSON object per line.",
                                                rich_help_panel="Output")], False),
]


def output_options(func: Callable) -> Callable:
    """Add --table and --nl to a command that returns its result, and print that result."""

    def run(command: Callable, kwargs: dict[str, Any], values: dict[str, Any]) -> None:
        emit(command(**kwargs), table=values["table"], nl=values["nl"])

    return extend_signature(func, OUTPUT_PARAMETERS, run)


def emit(data: Any, *, table: bool = False, nl: bool = False) -> None:
    """Print `data` (a dict, or a list of dicts) in the chosen format."""
    if data is None:
        return
    if table:
        print_table(data)
    elif nl:
        for row in data if isinstance(data, list) else [data]:
            typer.echo(to_json(row))
    elif isinstance(data, list):
        # One row a line inside the brackets: valid JSON that still reads like a listing.
        typer.echo("[" + ",\n ".join(to_json(row) for row in data) + "]")
    else:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))


def to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def print_table(data: Any) -> None:
    """A list of dicts as rows and columns; a single dict as a two-column field/value table."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    # Text() cells: a task that contains "[1, 2]" must not be read as rich markup.
    if isinstance(data, dict):
        grid = Table("field", "value")
        for key, value in data.items():
            grid.add_row(Text(str(key)), Text(cell(value)))
    else:
        columns = list(dict.fromkeys(key for row in data for key in row))
        grid = Table(*columns)
        for row in data:
            grid.add_row(*(Text(cell(row.get(column))) for column in columns))
    Console(file=sys.stdout, soft_wrap=False).print(grid)


def cell(value: Any) -> str:
    """A table cell: scalars as text, nested values as compact JSON, floats to 4 significant digits."""
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list, tuple)):
        return to_json(value)
    return str(value)


def note(message: str) -> None:
    """A line for the person at the terminal (stderr), never mixed into the data on stdout."""
    typer.echo(message, err=True)

