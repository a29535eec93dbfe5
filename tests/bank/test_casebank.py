"""The bank's operations on every backend (a real SQLite file + FAISS, a real PostgreSQL + pgvector), and the
SQLite backend's own file and index handling. A fake embedder where embeddings are beside the point."""

import io
import json

import numpy as np
import pytest

from memento import Case, CaseBank
from memento.errors import (
    BankError, EmbedderMismatchError, ImportFormatError, MementoError, NotFoundError, ValidationError,
)
from tests.fakes import FakeHashEmbedder

TASKS = ["Who founded the Acme company?", "In which city was Ada Vell born?", "What did Borin Tal invent?",
         "Who is the spouse of Cara Moss?", "Which river flows through Dunmere?"]


@pytest.fixture
def bank(make_bank):
    """A fresh bank of each backend (the `backend` fixture parametrizes every test that uses it)."""
    return make_bank()


def make_cases(n=5, **extra):
    return [Case(task=TASKS[i % len(TASKS)] + ("" if i < len(TASKS) else f" #{i}"), answer=f"a{i}",
                 reward=float(i % 2), metadata={"dataset": "even" if i % 2 == 0 else "odd"}, **extra) for i in range(n)]


def test_add_get_search_round_trip(bank):
    stored = bank.add_many(make_cases())
    assert bank.count() == 5
    assert bank.get(stored[2].id) == stored[2]
    hits = bank.search("What did Borin Tal invent?", k=3)
    assert hits[0].case.id == stored[2].id and hits[0].score == pytest.approx(1.0, abs=1e-5)
    assert [h.score for h in hits] == sorted([h.score for h in hits], reverse=True)


def test_search_with_vector_and_filters(bank):
    stored = bank.add_many(make_cases(10))
    query = bank.vectors([stored[3].id])[0]
    assert bank.search(query, k=1)[0].case.id == stored[3].id
    odd = bank.search(query, k=10, where={"dataset": "odd"})
    assert len(odd) == 5 and all(h.case.metadata["dataset"] == "odd" for h in odd)
    assert all(h.case.reward >= 1 for h in bank.search(query, k=10, min_reward=1))
    hits = bank.search(query, k=2, with_vectors=True)
    assert np.allclose(hits[0].vector, query)


def test_update_reembeds_only_when_task_changes(bank):
    case = bank.add(Case(task=TASKS[0], answer="x"))
    before = bank.vectors([case.id])[0]
    bank.update(case.id, answer="y", reward=1.0)
    assert np.array_equal(bank.vectors([case.id])[0], before)
    updated = bank.update(case.id, task="Which river flows through Dunmere?")
    assert updated.updated_at >= case.updated_at and updated.created_at == case.created_at
    assert bank.search("Which river flows through Dunmere?", k=1)[0].case.id == case.id
    assert bank.count() == 1 and bank.stats()["index"]["vectors"] == 1


def test_delete_never_returns_deleted_cases(bank):
    stored = bank.add_many(make_cases(10))
    bank.delete(stored[0].id)
    assert bank.delete_many([stored[1].id, stored[2].id]) == 2
    assert bank.delete_where(where={"dataset": "odd"}) == 4
    remaining = {c.id for c in bank.iter_cases()}
    assert remaining == {stored[i].id for i in (4, 6, 8)}
    for task in TASKS:
        assert {h.case.id for h in bank.search(task, k=10)} <= remaining


def test_failed_calls_change_nothing(bank):
    stored = bank.add_many(make_cases())
    with pytest.raises(NotFoundError, match="nothing was deleted"):
        bank.delete_many([stored[0].id, "no-such-id"])
    with pytest.raises(ValidationError, match="already in the bank"):
        bank.add_many([Case(task="new one"), Case(id=stored[1].id, task="dup")])
    with pytest.raises(ValidationError, match="reward"):
        bank.add_many([Case(task="fine"), {"task": "bad", "reward": float("nan")}])
    with pytest.raises(ValidationError, match="task text is empty"):
        bank.update(stored[0].id, task="")
    with pytest.raises(ValidationError, match="dim 64"):
        bank.search(np.ones(10), k=2)
    with pytest.raises(ValidationError, match="2 vectors for 1 cases"):
        bank.add_many([Case(task="x")], vectors=np.ones((2, 64)))
    assert bank.count() == 5 and bank.get(stored[0].id) == stored[0]


def test_unknown_ids_are_typed_errors(bank):
    with pytest.raises(NotFoundError, match="'nope' is not in bank"):
        bank.get("nope")
    with pytest.raises(NotFoundError):
        bank.update("nope", answer="x")
    with pytest.raises(MementoError):
        bank.vectors(["nope"])


def test_export_import_round_trip(tmp_path, bank, make_bank):
    stored = bank.add_many(make_cases(6))
    path = tmp_path / "out.jsonl"
    assert bank.export_jsonl(path, with_vectors=True) == 6
    with make_bank("copy") as copy:
        assert copy.import_jsonl(path) == 6
        assert [c.model_dump() for c in copy.iter_cases()] == [c.model_dump() for c in bank.iter_cases()]
        assert np.allclose(copy.vectors([stored[0].id]), bank.vectors([stored[0].id]))
        with pytest.raises(ValidationError, match="already in the bank"):
            copy.import_jsonl(path)
        assert copy.import_jsonl(path, on_conflict="skip") == 0


def test_import_bad_line_imports_nothing_unless_told(bank):
    lines = [json.dumps({"task": "good one"}), "{not json", json.dumps({"task": "", "reward": 1})]
    with pytest.raises(ImportFormatError, match="line 2") as info:
        bank.import_jsonl(io.StringIO("\n".join(lines)))
    assert info.value.line_number == 2 and bank.count() == 0
    assert bank.import_jsonl(io.StringIO("\n".join(lines)), skip_bad_lines=True) == 1


def test_reindex_rebuilds_and_reembeds(tmp_path, bank):
    stored = bank.add_many(make_cases())
    bank.reindex()
    assert bank.search(TASKS[1], k=1)[0].case.id == stored[1].id
    other = FakeHashEmbedder(dim=32, name="fake-hash-32")
    bank.reindex(other)
    assert bank.dim == 32 and bank.search(TASKS[1], k=1)[0].case.id == stored[1].id
    bank.close()
    with pytest.raises(EmbedderMismatchError, match="fake-hash-32"):
        CaseBank.open(str(bank.path), embedder=FakeHashEmbedder())
    with CaseBank.open(str(bank.path), embedder=other) as reopened:
        assert reopened.count() == 5


def test_opening_wrong_files(tmp_path, fake_embedder):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(BankError, match="not a SQLite file"):
        CaseBank(text, embedder=fake_embedder)
    import sqlite3
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(BankError, match="not a case bank"):
        CaseBank(other, embedder=fake_embedder)
    with pytest.raises(NotFoundError, match="does not exist"):
        CaseBank(tmp_path / "missing.db", embedder=fake_embedder, create=False)
    assert not (tmp_path / "missing.db").exists()
    CaseBank(tmp_path / "made.db", embedder=fake_embedder).close()
    with pytest.raises(EmbedderMismatchError, match="re-embed"):
        CaseBank(tmp_path / "made.db", embedder=FakeHashEmbedder(dim=64, name="another-model"))
    with pytest.raises(EmbedderMismatchError, match="fake-hash"):
        CaseBank(tmp_path / "made.db")  # the default embedder is not the one it was made with


def test_missing_stale_or_corrupt_index_is_rebuilt(tmp_path, fake_embedder, caplog):
    path = tmp_path / "cases.db"
    with CaseBank(path, embedder=fake_embedder) as bank:
        stored = bank.add_many(make_cases())
    index_file = path.with_name("cases.db.faiss")
    index_file.write_bytes(index_file.read_bytes()[:100])  # truncated
    with CaseBank(path, embedder=fake_embedder) as bank:
        assert "rebuilding" in caplog.text
        assert bank.search(TASKS[3], k=1)[0].case.id == stored[3].id
    index_file.unlink()
    with CaseBank(path, embedder=fake_embedder) as bank:
        assert bank.stats()["index"]["healthy"]
    stale = index_file.read_bytes()
    with CaseBank(path, embedder=fake_embedder) as bank:
        bank.delete(stored[3].id)
    index_file.write_bytes(stale)  # the file from before the delete
    with CaseBank(path, embedder=fake_embedder) as bank:
        assert stored[3].id not in {h.case.id for h in bank.search(TASKS[3], k=5)}
        assert bank.stats()["index"]["vectors"] == 4


def test_hnsw_index(tmp_path, fake_embedder):
    with CaseBank(tmp_path / "h.db", embedder=fake_embedder, index="hnsw") as bank:
        stored = bank.add_many(make_cases(20))
        bank.delete(stored[0].id)
        hits = bank.search(stored[0].task, k=5)
        assert stored[0].id not in {h.case.id for h in hits} and len(hits) == 5
        bank.update(stored[1].id, task="A brand new question about rivers")
        assert bank.search("A brand new question about rivers", k=1)[0].case.id == stored[1].id
    with CaseBank(tmp_path / "h.db", embedder=fake_embedder) as bank:
        assert bank.index_config.kind == "hnsw" and bank.stats()["index"]["vectors"] == 19


def test_real_embedder_semantic_search(tmp_path, real_embedder):
    with CaseBank(tmp_path / "real.db") as bank:
        bank.add_many([Case(task=t) for t in TASKS])
        hit = bank.search("Where was Ada Vell's birthplace?", k=1)[0]
        assert hit.case.task == TASKS[1] and 0.5 < hit.score <= 1.0
        assert bank.embedder_name == "all-MiniLM-L6-v2" and bank.dim == 384


def test_import_binary_file_is_a_format_error(tmp_path, bank):
    binary = tmp_path / "cases.bin"
    binary.write_bytes(b"\xff\xfe\x00not text")
    with pytest.raises(ImportFormatError, match="not UTF-8"):
        bank.import_jsonl(binary)
    assert bank.count() == 0


def test_a_writer_behind_a_pruned_change_log_rebuilds_inside_its_write(tmp_path, fake_embedder):
    path = tmp_path / "lag.db"
    behind = CaseBank(path, embedder=fake_embedder)
    with CaseBank(path, embedder=fake_embedder) as other:
        other.add(Case(task=TASKS[0]))
        with other.write_transaction() as conn:  # as if the log had been trimmed past `behind`
            conn.execute("UPDATE bank_meta SET value = (SELECT value FROM bank_meta WHERE key = 'generation') "
                         "WHERE key = 'pruned_through'")
    added = behind.add(Case(task=TASKS[1]))
    assert behind.count() == 2 and behind.search(TASKS[1], k=1)[0].case.id == added.id
    assert behind.stats()["index"]["healthy"]
    behind.close()


UNICODE = ["Ünïcödé façade — naïve café?", "日本語の質問はどこ？", "עברית \u202eRTL\u202c text", "emoji 🧠🔍 and\ttabs",
           "combining e\u0301 vs \u00e9", "quotes ' \" ` and back\\slash"]


def test_unicode_round_trips_and_filters_alike(bank):
    stored = bank.add_many([Case(namespace=("équipe", f"ü{i % 2}"), task=t, answer=t[::-1], plan=[t],
                                 metadata={"lang": t[:3], "n": i}) for i, t in enumerate(UNICODE)])
    assert [bank.get(c.id) for c in stored] == stored
    assert bank.list_namespaces() == [("équipe", "ü0"), ("équipe", "ü1")]
    assert bank.count(namespace_prefix=("équipe",)) == 6 and bank.count(namespace=("équipe", "ü1")) == 3
    assert [c.id for c in bank.iter_cases(where={"lang": "日本語"})] == [stored[1].id]
    assert [c.id for c in bank.iter_cases(text="🧠")] == [stored[3].id]
    assert [c.task for c in bank.iter_cases(order_by="task")] == sorted(UNICODE)  # code point order on both
    for case in stored:
        assert bank.search(case.task, k=1, namespace=case.namespace)[0].case.id == case.id


def test_a_filtered_search_returns_k_whenever_k_match(make_bank):
    """An approximate index must not come back short when a filter leaves few matches among many cases."""
    bank = make_bank("filtered", index="hnsw")
    rng = np.random.default_rng(0)
    bank.add_many([Case(task=f"crowd {i}", metadata={"rare": i % 100 == 0}) for i in range(1500)],
                  vectors=rng.normal(size=(1500, 64)))
    query = rng.normal(size=64)
    assert len(bank.search(query, k=10, where={"rare": True})) == 10
    assert len(bank.search(query, k=20, where={"rare": True})) == 15
    exact = bank.search(query, k=5, where={"rare": True})
    scores = [h.score for h in exact]
    assert scores == sorted(scores, reverse=True)


def test_every_backend_implements_the_whole_interface(bank):
    from memento.bank import Bank

    assert isinstance(bank, Bank)
    members = [name for name in vars(Bank) if not name.startswith("_") and callable(getattr(Bank, name))]
    assert len(members) > 30 and all(callable(getattr(bank, name)) for name in members)


def test_reembedding_an_empty_bank(bank):
    bank.reindex(FakeHashEmbedder(dim=32, name="fake-hash-32"))
    assert bank.dim == 32 and bank.count() == 0
    bank.add(Case(task=TASKS[0]))
    assert bank.search(TASKS[0], k=1)[0].case.task == TASKS[0]


def test_concurrent_updates_of_other_fields_are_all_kept(bank):
    """Two threads update different fields of one case: neither write undoes the other."""
    import threading

    case = bank.add(Case(task=TASKS[0]))

    def write(field, values):
        for value in values:
            bank.update(case.id, **{field: value})

    threads = [threading.Thread(target=write, args=("answer", [f"a{i}" for i in range(25)])),
               threading.Thread(target=write, args=("reward", [i / 25 for i in range(25)]))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    final = bank.get(case.id)
    assert final.answer == "a24" and final.reward == 24 / 25
