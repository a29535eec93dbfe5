"""Procedures as data: templates that bind a task's values, look-alikes that do not fit, and where they are stored."""

import io
import json
import sqlite3

import pytest
from langgraph.store.base import PutOp

from memento import Case, CaseBank
from memento.errors import ValidationError
from memento.procedure import Cue, Hop, Procedure
from memento.store import CaseBankStore
from tests.fakes import FakeHashEmbedder

FOUNDER = Procedure(
    template="In which city was the founder of {t0} born?", slots=["t0"],
    hops=[Hop(query="{task}", cue=Cue(before=["founded", "in", "#", "by"]), binds="v1", about="t0"),
          Hop(query="{v1}", cue=Cue(before=["who", "was", "born", "in"]), binds="v2", about="v1")],
    answer="v2")


def test_a_task_of_the_same_shape_binds_the_slots():
    assert FOUNDER.fit("In which city was the founder of Kala Works born?") == {"t0": "Kala Works"}
    assert FOUNDER.fit("in which  city was the founder of University of Tamora born?") == {"t0": "University of Tamora"}


@pytest.mark.parametrize("look_alike", [
    "In which city was the CEO of Kala Works born?",
    "In which country was the founder of Kala Works born?",
    "In which city was the founder of the company born?",
    "In which city was the founder of Kala Works born? Answer briefly.",
])
def test_a_look_alike_does_not_fit(look_alike):
    assert FOUNDER.fit(look_alike) is None


def test_a_slot_holds_a_name_not_a_phrase():
    loose = Procedure(template="In which country was the {t0} born?", slots=["t0"], answer="t0")
    assert loose.fit("In which country was the Grand Duke born?") == {"t0": "Grand Duke"}
    assert loose.fit("In which country was the founder of Kala Works born?") is None


@pytest.mark.parametrize("bad, rule", [
    (dict(template="Who founded {t0}?", slots=[], answer="t0"), "must be its slots"),
    (dict(template="Who founded {t0}?", slots=["t0"], hops=[{"query": "{v9}", "cue": {}, "binds": "v1"}], answer="v1"),
     "before any hop binds"),
    (dict(template="Who founded {t0}?", slots=["t0"], answer="v3"), "is not bound"),
    (dict(template="  ", slots=[], answer="x"), "template is empty"),
])
def test_a_procedure_with_unbound_variables_is_refused(bad, rule):
    with pytest.raises(ValueError, match=rule):
        Procedure(**bad)


def test_cases_store_export_and_import_their_procedure(tmp_path):
    with CaseBank(tmp_path / "a.db", embedder=FakeHashEmbedder()) as bank:
        bank.add(Case(task="In which city was the founder of Kala Works born?", procedure=FOUNDER, reward=1.0))
        bank.add(Case(task="a case without one"))
        out = io.StringIO()
        bank.export_jsonl(out)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines[0]["procedure"]["template"] == FOUNDER.template and lines[1]["procedure"] is None
    with CaseBank(tmp_path / "b.db", embedder=FakeHashEmbedder()) as other:
        other.import_jsonl(io.StringIO(out.getvalue()))
        [with_procedure] = [c for c in other.iter_cases() if c.procedure is not None]
        assert with_procedure.procedure == FOUNDER


def test_a_bank_of_schema_version_1_opens_migrated_and_keeps_its_cases(tmp_path):
    path = tmp_path / "old.db"
    with CaseBank(path, embedder=FakeHashEmbedder()) as bank:
        bank.add_many([Case(task=f"old case {i}", answer=str(i)) for i in range(3)])
    # Make it exactly what version 1 wrote: no procedure column, schema_version 1.
    conn = sqlite3.connect(path)
    conn.execute("ALTER TABLE cases DROP COLUMN procedure")
    conn.execute("UPDATE bank_meta SET value = '1' WHERE key = 'schema_version'")
    conn.commit()
    conn.close()

    with CaseBank(path, embedder=FakeHashEmbedder()) as bank:
        assert sorted(c.answer for c in bank.iter_cases()) == ["0", "1", "2"]
        assert all(c.procedure is None for c in bank.iter_cases())
        assert bank.search("old case 1", k=1)[0].case.answer == "1"
        bank.add(Case(task="new case", procedure=FOUNDER))
        assert bank.get(next(c.id for c in bank.iter_cases(text="new case"))).procedure == FOUNDER
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT value FROM bank_meta WHERE key = 'schema_version'").fetchone() == ("2",)
    conn.close()


def test_the_langgraph_store_writes_and_validates_procedures(tmp_path):
    bank = CaseBank(tmp_path / "store.db", embedder=FakeHashEmbedder())
    store = CaseBankStore(bank, index={"fields": ["text"]})
    store.put(("recipes",), "founder", {"text": FOUNDER.template, "procedure": FOUNDER.model_dump(mode="json")})
    [case] = list(bank.iter_cases(namespace=("recipes",)))
    assert case.procedure == FOUNDER
    assert store.get(("recipes",), "founder").value["procedure"]["template"] == FOUNDER.template
    with pytest.raises(ValidationError, match="not a procedure"):
        store.batch([PutOp(("recipes",), "broken", {"text": "x", "procedure": {"template": "x {t0}", "slots": []}})])
    assert bank.count() == 1
    bank.close()
