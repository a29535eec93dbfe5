"""Options shared by several commands, and the parsers that turn their text into library arguments.

Flags are named like the library's keyword arguments: `--min-reward` is `min_reward=`,
`--where dataset=hotpotqa` is `where={"dataset": "hotpotqa"}`.
"""

import functools
import inspect
import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer

from memento.errors import NotFoundError, ValidationError

DATE_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]

BankPath = Annotated[str, typer.Option(
    "--bank", "-b", envvar="MEMENTO_BANK", show_default=False,
    help="The bank: a file made by `memento init`, or a postgresql:// URL (memento[postgres]). Env: MEMENTO_BANK.")]
"""A string, not a Path: a Path would fold the '//' of a URL."""

EmbedderName = Annotated[Optional[str], typer.Option(
    "--embedder", envvar="MEMENTO_EMBEDDER", show_default=False,
    help="The bank's embedding model: a sentence-transformers folder or a known name "
         "(default: the packaged all-MiniLM-L6-v2). Env: MEMENTO_EMBEDDER.")]

Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]

DryRun = Annotated[bool, typer.Option("--dry-run", help="Show what would be removed; change nothing.")]


def parse_value(text: str) -> Any:
    """A command-line value: JSON when it parses (1, true, [1, 2], {"a": 1}), else the string itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def parse_assignment(text: str, flag: str) -> tuple[str, str]:
    """Split `key=value`; ValidationError naming the flag when there is no '='."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ValidationError(f"{flag} {text!r} is not key=value; write e.g. {flag} dataset=hotpotqa")
    return key.strip(), value


def parse_where(pairs: list[str] | None) -> dict[str, Any]:
    """`--where key=value` pairs as the library's `where` dict (values parsed as JSON when they parse)."""
    return {key: parse_value(value) for key, value in (parse_assignment(p, "--where") for p in pairs or [])}


def as_utc(moment: datetime | None) -> datetime | None:
    """A date from the command line, read as UTC when it has no timezone."""
    if moment is None:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
DURATION_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_duration(text: str) -> timedelta:
    """`90d`, `12h`, `2w` as a timedelta."""
    match = DURATION.match(text)
    if not match:
        raise ValidationError(f"duration {text!r} is not understood; write a number and a unit: 30m, 12h, 90d or 2w")
    try:
        return timedelta(**{DURATION_UNITS[match.group(2)]: float(match.group(1))})
    except OverflowError:
        raise ValidationError(f"duration {text!r} is longer than {timedelta.max.days} days, the longest there is; "
                              f"give a shorter one, e.g. 3650d") from None


def readable_file(source: str, kinds: str = "a .json or .jsonl file") -> Path:
    """The file an argument names, checked: NotFoundError if it is not there, ValidationError for a folder."""
    path = Path(source)
    if path.is_dir():
        raise ValidationError(f"'{source}' is a directory, not a file; give {kinds}, e.g. {path / 'cases.jsonl'}, "
                              f"or - for stdin")
    if not path.is_file():
        raise NotFoundError(f"file '{source}' does not exist; give {kinds}, or - for stdin")
    return path


def writable_file(destination: str) -> Path:
    """The file an argument names for writing, checked: its folder exists and it is not a folder itself."""
    path = Path(destination)
    if path.is_dir():
        raise ValidationError(f"'{destination}' is a directory; give a file to write, e.g. {path / 'cases.jsonl'}, "
                              f"or - for stdout")
    if not path.parent.is_dir():
        raise NotFoundError(f"folder '{path.parent}' for '{path.name}' does not exist; create it first, "
                            f"or give a path in an existing folder")
    return path


def time_before_now(duration: timedelta, flag: str) -> datetime:
    """Now (UTC) minus `duration`; ValidationError naming `flag` when that is before year 1."""
    try:
        return datetime.now(timezone.utc) - duration
    except OverflowError:
        raise ValidationError(f"{flag} {duration.days}d reaches back before the year 1; "
                              f"give a shorter duration, e.g. 3650d for ten years") from None


# -- adding options to many commands ----------------------------------------------------------------

SHARED_ARGUMENTS = {"filters"}
"""Parameters a decorator fills in, hidden from the command line."""



def extend_signature(func: Callable, extra: list[inspect.Parameter],
                     handle: Callable[[Callable, dict[str, Any], dict[str, Any]], Any]) -> Callable:
    """A command with `func`'s options plus `extra`; `handle(func, kwargs, extra_values)` runs it.

    Typer reads a command's options from its signature, so shared options are added to it here
    instead of being repeated in every command.
    """
    names = {p.name for p in extra}
    own = [p for p in inspect.signature(func).parameters.values() if p.name not in SHARED_ARGUMENTS]

    @functools.wraps(func)
    def command(**kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name in names}
        return handle(func, kwargs, values)

    command.__signature__ = inspect.Signature(own + extra)
    return command



def keyword_parameter(name: str, annotation: Any, default: Any = None) -> inspect.Parameter:
    """A keyword-only command parameter, for the decorators that add options."""
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=annotation, default=default)


FILTER_PARAMETERS = [
    keyword_parameter("namespace", Annotated[Optional[str], typer.Option(
        help="Only this namespace, labels joined by '/', e.g. acme/support.", rich_help_panel="Filters")]),
    keyword_parameter("namespace_prefix", Annotated[Optional[str], typer.Option(
        help="This namespace and every namespace below it.", rich_help_panel="Filters")]),
    keyword_parameter("where", Annotated[Optional[list[str]], typer.Option(
        help="Metadata equality, key=value (repeatable); the value is read as JSON when it parses.",
        rich_help_panel="Filters")]),
    keyword_parameter("dataset", Annotated[Optional[str], typer.Option(
        help="Shorthand for --where dataset=NAME.", rich_help_panel="Filters")]),
    keyword_parameter("min_reward", Annotated[Optional[float], typer.Option(help="Reward at least this.", rich_help_panel="Filters")]),
    keyword_parameter("max_reward", Annotated[Optional[float], typer.Option(help="Reward at most this.", rich_help_panel="Filters")]),
    keyword_parameter("text", Annotated[Optional[str], typer.Option(
        help="Task or answer contains this text (case-insensitive).", rich_help_panel="Filters")]),
    keyword_parameter("since", Annotated[Optional[datetime], typer.Option(
        formats=DATE_FORMATS, metavar="DATE", help="Created at or after this date (UTC unless given).", rich_help_panel="Filters")]),
    keyword_parameter("until", Annotated[Optional[datetime], typer.Option(
        formats=DATE_FORMATS, metavar="DATE", help="Created before this date (UTC unless given).", rich_help_panel="Filters")]),
]


def filters_from(values: dict[str, Any]) -> dict[str, Any]:
    """The filter options' values as keyword arguments of `CaseBank.iter_cases`/`count`/`search`."""
    where = parse_where(values["where"])
    if values["dataset"] is not None:
        where["dataset"] = values["dataset"]
    filters = {
        "namespace": values["namespace"], "namespace_prefix": values["namespace_prefix"], "where": where or None,
        "min_reward": values["min_reward"], "max_reward": values["max_reward"], "text": values["text"],
        "since": as_utc(values["since"]), "until": as_utc(values["until"]),
    }
    return {key: value for key, value in filters.items() if value is not None}


def filter_options(func: Callable) -> Callable:
    """Give a command the case filters (--namespace, --where, --min-reward, ...) as one `filters` dict."""
    return extend_signature(func, FILTER_PARAMETERS,
                            lambda f, kwargs, values: f(**kwargs, filters=filters_from(values)))
