"""The CLI works on a bank given as a postgresql:// URL (--bank or MEMENTO_BANK) as on a file."""

import json

import pytest
from typer.testing import CliRunner

from memento import CaseBank
from memento.cli import app
from memento.cli.banks import EMBEDDERS
from tests.fakes import FakeHashEmbedder

pytestmark = pytest.mark.postgres


def test_cases_commands_on_a_url(postgres_url, tmp_path, monkeypatch):
    monkeypatch.setitem(EMBEDDERS, "fake-hash", FakeHashEmbedder)
    monkeypatch.chdir(tmp_path)
    url = f"{postgres_url}{'&' if '?' in postgres_url else '?'}schema=cli_url_test"
    CaseBank.open(url, FakeHashEmbedder()).close()
    source = tmp_path / "new.jsonl"
    source.write_text("".join(json.dumps({"task": t, "metadata": {"dataset": "d"}}) + "\n" for t in ("alpha one", "beta two")))
    runner = CliRunner(env={"MEMENTO_EMBEDDER": "fake-hash", "MEMENTO_BANK": url})

    def ok(*args):
        result = runner.invoke(app, list(args), prog_name="memento")
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return json.loads(result.stdout)

    assert [c["task"] for c in ok("cases", "add", str(source))] == ["alpha one", "beta two"]
    assert {c["task"] for c in ok("cases", "ls")} == {"alpha one", "beta two"}
    assert ok("cases", "search", "alpha one", "-k", "1")[0]["task"] == "alpha one"
    assert ok("cases", "stats", "--bank", url)["datasets"] == {"d": 2}
    missing = runner.invoke(app, ["cases", "ls", "--bank", url.replace("cli_url_test", "no_such_bank")],
                            prog_name="memento")
    assert missing.exit_code == 1 and "does not exist" in missing.stderr and "Traceback" not in missing.output


def test_init_creates_a_bank_at_a_url_and_refuses_one_that_holds_cases(postgres_url, monkeypatch):
    monkeypatch.setitem(EMBEDDERS, "fake-hash", FakeHashEmbedder)
    url = f"{postgres_url}{'&' if '?' in postgres_url else '?'}schema=cli_init_test"
    runner = CliRunner(env={"MEMENTO_EMBEDDER": "fake-hash"})
    created = runner.invoke(app, ["init", url], prog_name="memento")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["embedder"] == "fake-hash"
    with CaseBank.open(url, FakeHashEmbedder()) as bank:
        bank.add({"task": "alpha"})
    again = runner.invoke(app, ["init", url], prog_name="memento")
    assert again.exit_code == 1 and "already exists" in again.stderr and "Traceback" not in again.output
    with CaseBank.open(url, FakeHashEmbedder()) as bank:
        assert len(bank) == 1
