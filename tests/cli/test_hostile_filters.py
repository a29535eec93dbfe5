"""The cross-tenant injection through `memento cases rm --where`, reproduced through the CLI: refused, nothing lost."""

from memento import CaseBank
from tests.bank.test_filter_injection import HOSTILE_KEY, fill
from tests.fakes import FakeHashEmbedder


def test_the_reported_cli_command_fails_cleanly(cli):
    path = cli.folder / "tenants.db"
    cli.ok("init", path)
    with CaseBank(path, embedder=FakeHashEmbedder()) as bank:
        fill(bank)
    before = cli.snapshot(path)
    line = cli.fails("cases", "rm", "--namespace", "nope", "--where", f"{HOSTILE_KEY}=1", "--yes", "--bank", path)
    assert "metadata filter key" in line and "letters, digits" in line
    assert cli.snapshot(path) == before
    assert len(cli.ok("cases", "ls", "--namespace", "victim", "--bank", path)) == 5
