"""A case's procedure through the CLI: shown, edited, and a broken edit refused with nothing changed."""

import json

from memento import Case, CaseBank
from tests.agent.test_procedure import FOUNDER
from tests.fakes import FakeHashEmbedder


def test_the_cli_shows_and_edits_a_procedure_and_refuses_a_broken_one(cli):
    path = cli.folder / "cases.db"
    cli.ok("init", path)
    with CaseBank(path, embedder=FakeHashEmbedder()) as bank:
        case = bank.add(Case(task="In which city was the founder of Kala Works born?", procedure=FOUNDER))
    shown = cli.ok("cases", "show", case.id, "--bank", path)
    assert shown["procedure"]["hops"][0]["cue"]["before"] == ["founded", "in", "#", "by"]
    edited = FOUNDER.model_copy(update={"note": "checked by hand", "learned_from": "edit"})
    cli.ok("cases", "edit", case.id, "--set", f"procedure={edited.model_dump_json()}", "--bank", path)
    assert cli.ok("cases", "show", case.id, "--bank", path)["procedure"]["note"] == "checked by hand"
    before = cli.snapshot(path)
    broken = {**edited.model_dump(mode="json"), "answer": "v9"}
    line = cli.fails("cases", "edit", case.id, "--set", f"procedure={json.dumps(broken)}", "--bank", path)
    assert "procedure" in line and "v9" in line
    assert cli.snapshot(path) == before
