"""Opening the bank a command works on, choosing its embedder, the trash that makes removals undoable,
and `memento bank copy`."""

import sqlite3
import sys
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Callable, Iterator, Optional, Sequence

import numpy as np
import typer

from memento.bank import Bank, CaseBank
from memento.bank.copy import copy_bank
from memento.cli.options import BankPath, EmbedderName
from memento.cli.output import output_options
from memento.embedders import (DEFAULT_MODEL_DIM, DEFAULT_MODEL_NAME, Embedder, SentenceTransformerEmbedder,
                               default_embedder)
from memento.errors import BankError, EmbedderMismatchError, ValidationError

EMBEDDERS: dict[str, Callable[[], Embedder]] = {DEFAULT_MODEL_NAME: default_embedder}
"""Embedders `--embedder` knows by name; anything else is read as a sentence-transformers folder.
Tests register their fakes here."""

PROGRESS_CHUNK = 256  # texts per embed call when a progress bar is shown


class ProgressEmbedder:
    """Wraps the bank's embedder: loads it on first use and shows a progress bar on big batches."""

    def __init__(self, load: Callable[[], Embedder], name: str, dim: int):
        self._load = load
        self._inner: Embedder | None = None
        self.name = name
        self.dim = dim

    @property
    def inner(self) -> Embedder:
        if self._inner is None:
            self._inner = self._load()
        return self._inner

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        texts = list(texts)
        if len(texts) <= PROGRESS_CHUNK:
            return self.inner.embed(texts)
        from tqdm import tqdm

        parts = []
        # disable=None: the bar shows on a terminal and stays out of pipes and logs.
        with tqdm(total=len(texts), desc="embedding", unit="text", disable=None, file=sys.stderr) as bar:
            for start in range(0, len(texts), PROGRESS_CHUNK):
                parts.append(self.inner.embed(texts[start:start + PROGRESS_CHUNK]))
                bar.update(len(parts[-1]))
        return np.concatenate(parts)


def resolve_embedder(spec: str | None) -> Embedder:
    """The embedder `--embedder` names: a known name, a model folder, or (None) the packaged default."""
    if spec is None:
        return ProgressEmbedder(default_embedder, DEFAULT_MODEL_NAME, DEFAULT_MODEL_DIM)
    if spec in EMBEDDERS:
        embedder = EMBEDDERS[spec]()
    elif Path(spec).is_dir():
        embedder = SentenceTransformerEmbedder(spec)
    else:
        raise ValidationError(f"embedder {spec!r} is neither a model folder nor a known name ({', '.join(sorted(EMBEDDERS))}); "
                              f"pass the folder of a sentence-transformers model")
    return ProgressEmbedder(lambda: embedder, embedder.name, embedder.dim)


@contextmanager
def open_bank(path: str | Path, embedder: str | None = None, *, create: bool = False,
              index: str | None = None) -> Iterator[Bank]:
    """Open an existing bank, a file or a postgresql:// URL (or, for `init` only, create one); close it afterwards."""
    try:
        bank = CaseBank.open(path if is_url(path) else Path(path), resolve_embedder(embedder), create=create, index=index)
    except EmbedderMismatchError as exc:
        raise EmbedderMismatchError(f"{exc} (on the command line: --embedder MODEL or MEMENTO_EMBEDDER)") from None
    except sqlite3.Error as exc:  # SQLite cannot open or create the file (a device, a read-only folder, a full disk)
        raise BankError(f"cannot open bank '{path}' ({exc}); it must be a file (not a device) in a folder "
                        f"you may write to, on a disk with room") from None
    with bank:
        yield bank


# -- the trash ------------------------------------------------------------------------------------


def is_url(location: str | Path) -> bool:
    """True for a bank given as a URL (postgresql://...), False for a file path."""
    return isinstance(location, str) and "://" in location


def trash_folder(bank: Bank) -> Path:
    """Where removed cases go: `<bank>.trash/` beside a bank file; `./<schema>.trash/` for a server's bank."""
    if isinstance(bank.path, Path):
        return bank.path.with_name(bank.path.name + ".trash")
    return Path.cwd() / f"{getattr(bank, 'schema', 'bank')}.trash"


def move_to_trash(bank: Bank, ids: Sequence[str], reason: str) -> dict:
    """Export the cases (with their vectors) to a new trash file, then delete them.

    `memento cases import FILE` restores them exactly, without re-embedding. If the delete fails,
    the trash file is removed again, so the trash only ever holds cases that were deleted.
    """
    ids = list(dict.fromkeys(ids))
    folder = trash_folder(bank)
    folder.mkdir(exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"{stamp}-{reason}.jsonl"
    try:
        with open(path, "x", encoding="utf-8") as handle:
            for start in range(0, len(ids), 500):  # under SQLite's limit on bound parameters
                bank.export_jsonl(handle, with_vectors=True, ids=ids[start:start + 500])
        deleted = bank.delete_many(ids)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return {"deleted": deleted, "trash": str(path), "restore": f"memento cases import {path} --bank {bank.path}"}


# -- `memento bank ...` ---------------------------------------------------------------------------

app = typer.Typer(help="Move a bank between files and servers.", no_args_is_help=True)


@app.command(short_help="Copy a bank (cases, vectors, replay, stats, traces) into a new one, verified.")
@output_options
def copy(source: Annotated[str, typer.Argument(help="The bank to copy: a file or a postgresql:// URL.", show_default=False)],
         destination: Annotated[str, typer.Argument(help="A new bank: a file or a postgresql:// URL (created).",
                                                    show_default=False)],
         embedder: EmbedderName = None,
         index: Annotated[Optional[str], typer.Option(
             help="The destination's vector index: flat, hnsw (or ivfflat on PostgreSQL).")] = None) -> dict:
    """Example: memento bank copy cases.db copy.db

    To a server: memento bank copy cases.db 'postgresql://me@db/memento?schema=team_a'. Copies every case with its stored vector (nothing is re-embedded), each policy's replay rows,
    case statistics, episodic entries and checkpoints, and the agent's traces; then counts and
    hashes each part on both sides and fails if any differs. The destination must be new or empty.
    """
    if not is_url(destination) and Path(destination).exists():
        raise BankError(f"'{destination}' already exists; nothing was changed (copy into a new path)")
    with open_bank(source, embedder) as src, open_bank(destination, embedder, create=True, index=index) as dst:
        return copy_bank(src, dst)


@app.command(short_help="Read every page of a bank file and compare its index with its rows.")
@output_options
def check(bank_path: BankPath, embedder: EmbedderName = None) -> dict:
    """Example: memento bank check --bank cases.db

    SQLite notices a damaged page only when a command reads it, and a page damaged into
    valid-looking garbage can even be read without an error. This reads the whole file
    (`PRAGMA quick_check`, seconds per GB) and compares the FAISS index with the rows. Exit 1 with
    an Error line when something is wrong; nothing is changed. For a postgresql:// bank, use the
    server's own tools (data checksums, amcheck).
    """
    if is_url(bank_path):
        raise ValidationError(f"{bank_path} is a server: check it with PostgreSQL's own tools (data checksums, amcheck)")
    with open_bank(bank_path, embedder) as bank:
        report = bank.check()
    if not report["ok"]:
        found = report["sqlite"] if report["sqlite"] != "ok" else [f"the index holds {report['index']['vectors']} "
                                                                    f"vectors for {report['index']['cases']} cases"]
        raise BankError(f"bank '{bank_path}' is damaged: {'; '.join(found)[:400]}; restore a backup, or export what "
                        f"still reads (`memento cases export`) into a new bank; `memento cases reindex` rebuilds an index that "
                        f"disagrees with intact rows")
    return report
