"""A CLI runner against real bank files, with a fake embedder registered where embeddings are beside the point."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import Result
from typer.testing import CliRunner

from memento.cli import app
from memento.cli.banks import EMBEDDERS
from memento.llm.loading import BACKENDS
from tests.cli.fixture_cases import CASES
from tests.fakes import FakeHashEmbedder


@dataclass
class Cli:
    """Runs `memento ...` in-process with typer's CliRunner, in a temporary folder."""

    runner: CliRunner
    folder: Path

    def __call__(self, *args: str, input: str | None = None, env: dict | None = None) -> Result:
        return self.runner.invoke(app, [str(a) for a in args], input=input, env=env, prog_name="memento")

    def ok(self, *args: str, input: str | None = None, env: dict | None = None):
        """Run, assert exit 0, return the parsed JSON on stdout (None when stdout is empty)."""
        result = self(*args, input=input, env=env)
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return json.loads(result.stdout) if result.stdout.strip() else None

    def fails(self, *args: str, input: str | None = None, env: dict | None = None, code: int = 1) -> str:
        """Run, assert a user error: exit `code`, one line on stderr, no traceback. Returns that line."""
        result = self(*args, input=input, env=env)
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        assert isinstance(result.exception, SystemExit), result.exception
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
        assert "Traceback" not in result.output
        return lines[0]

    def snapshot(self, bank: Path) -> str:
        """Everything stored in the bank, vectors included, as text: equal snapshots mean nothing changed."""
        result = self("cases", "export", "-", "--with-vectors", "--bank", bank)
        assert result.exit_code == 0, result.stderr
        return result.stdout


@pytest.fixture
def cli(tmp_path, monkeypatch) -> Cli:
    """The CLI with MEMENTO_EMBEDDER naming a fake hash embedder, run in tmp_path."""
    monkeypatch.setitem(EMBEDDERS, "fake-hash", FakeHashEmbedder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MEMENTO_BANK", raising=False)
    return Cli(CliRunner(env={"MEMENTO_EMBEDDER": "fake-hash"}), tmp_path)


@pytest.fixture
def bank(cli) -> Path:
    """A bank file with the six CASES in it, made through the CLI."""
    path = cli.folder / "cases.db"
    source = cli.folder / "fixture_cases.jsonl"
    source.write_text("".join(json.dumps(c) + "\n" for c in CASES))
    cli.ok("init", path)
    cli.ok("cases", "add", source, "--bank", path)
    return path



@pytest.fixture
def scripted(monkeypatch) -> dict:
    """Env naming the LLM backend "cli-scripted", registered as tests.cli.scripted_llm.CliScriptedLLM."""
    monkeypatch.setitem(BACKENDS, "cli-scripted", "tests.cli.scripted_llm:CliScriptedLLM")
    return {"MEMENTO_LLM_BACKEND": "cli-scripted"}
