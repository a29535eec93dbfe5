"""A small real bank in two namespaces, and its export as the before/after snapshot."""

import io
from pathlib import Path

import numpy as np
import pytest

from memento import Case, CaseBank
from tests.fakes import FakeHashEmbedder

NAMESPACES = [("victim",), ("victim", "inner"), ("other",)]


def fill(bank: CaseBank) -> None:
    rng = np.random.default_rng(0)
    cases = [Case(id=f"{'-'.join(ns)}-{i}", namespace=ns, task=f"task {i} of {'/'.join(ns)}", answer=f"answer {i}",
                  reward=float(i % 2), metadata={"dataset": "d1" if i % 2 else "d2", "judge_v2": i})
             for ns in NAMESPACES for i in range(4)]
    bank.add_many(cases, vectors=rng.normal(size=(len(cases), 64)))


def export(bank: CaseBank) -> str:
    """Everything the bank holds, vectors included: equal exports mean nothing changed."""
    out = io.StringIO()
    bank.export_jsonl(out, with_vectors=True)
    return out.getvalue()


@pytest.fixture(scope="module")
def bank(tmp_path_factory):
    """One bank per test module: every example must leave it as it was."""
    path = tmp_path_factory.mktemp("hostile") / "cases.db"
    with CaseBank(path, embedder=FakeHashEmbedder()) as bank:
        fill(bank)
        yield bank


@pytest.fixture(scope="module")
def cli():
    """The real CLI in-process (typer's runner), with a fake hash embedder registered by name."""
    from typer.testing import CliRunner

    from memento.cli.banks import EMBEDDERS
    from tests.cli.conftest import Cli

    EMBEDDERS["fake-hash"] = FakeHashEmbedder
    try:
        yield Cli(CliRunner(env={"MEMENTO_EMBEDDER": "fake-hash", "MEMENTO_BANK": ""}), Path("."))
    finally:
        EMBEDDERS.pop("fake-hash", None)


def assert_user_error(result, codes=(1,)) -> str:
    """Exit 1 (or a usage error, 2), one `Error:` line on stderr, never a traceback; returns the line."""
    assert result.exit_code in codes, (result.exit_code, result.stdout[-300:], result.stderr[-300:], result.exception)
    assert isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output
    if result.exit_code == 1:
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr[-500:]
        return lines[0]
    return result.stderr
