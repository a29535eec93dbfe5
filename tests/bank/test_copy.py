"""Moving a bank between backends, verified: `copy_bank`, `memento bank copy`, and export | import.

Each test copies from this run's backend to the other one (SQLite -> PostgreSQL, PostgreSQL -> SQLite).
"""

import io

import numpy as np
import pytest
from typer.testing import CliRunner

from memento import Case, CaseBank
from memento.bank import EpisodicEntry, ReplayRow
from memento.bank.copy import bank_digest, copy_bank
from memento.cli import app
from memento.cli.banks import EMBEDDERS
from memento.errors import BankError
from tests.fakes import FakeHashEmbedder


@pytest.fixture
def other_location(backend, tmp_path, request):
    """name -> a location on the other backend."""
    if backend == "postgres":
        return lambda name: str(tmp_path / f"{name}.db")
    url = request.getfixturevalue("postgres_url")
    import uuid

    prefix = "c" + uuid.uuid4().hex[:12]
    return lambda name: f"{url}{'&' if '?' in url else '?'}schema={prefix}_{name}"


def fill(bank):
    rng = np.random.default_rng(1)
    cases = bank.add_many([Case(namespace=("team", f"n{i % 3}"), task=f"task ü {i}", answer=f"a{i}", reward=i % 2,
                                plan=[f"step {i}"], metadata={"dataset": "d", "i": i}) for i in range(30)])
    for i in range(5):
        bank.append_replay(ReplayRow(policy="neural", episode_id=f"e{i}", state=rng.normal(size=64).astype(np.float32),
                                     case_ids=(cases[i].id, cases[i + 1].id), reward=float(i % 2), done=i % 2 == 0,
                                     case_features=rng.normal(size=(2, 5)).astype(np.float32),
                                     next_state=None if i % 2 == 0 else rng.normal(size=64).astype(np.float32),
                                     next_ids=() if i % 2 == 0 else (cases[7].id,),
                                     next_features=None if i % 2 == 0 else np.ones((1, 5), dtype=np.float32)))
    bank.write_episodic_entries("episodic", [EpisodicEntry(cases[0].id, np.ones(64, dtype=np.float32), 0.7, 3)],
                                episode_id="e9")
    bank.save_checkpoint("neural", b"v1")
    bank.save_checkpoint("neural", b"v2 \x00 bytes")
    bank.save_trace({"episode_id": "e0", "task": "task 0", "reward": 1.0, "created_at": "2026-01-01T00:00:00+00:00"})
    bank.save_trace({"episode_id": "e1", "task": "task 1", "created_at": "2026-01-02T00:00:00+00:00"})
    return cases


def test_copy_moves_everything_and_verifies_it(make_bank, other_location):
    src = make_bank("src")
    cases = fill(src)
    with CaseBank.open(other_location("dst"), embedder=FakeHashEmbedder()) as dst:
        report = copy_bank(src, dst)
        assert report["verified"] and report["cases"] == 30 and report["replay"] == 5 and report["checkpoints"] == 2
        assert report["stats"] == 6 and report["entries"] == 1 and report["traces"] == 2
        assert bank_digest(dst) == bank_digest(src)
        assert dst.get(cases[3].id) == cases[3] and np.array_equal(dst.vectors([cases[3].id]), src.vectors([cases[3].id]))
        assert dst.load_checkpoint("neural") == (2, b"v2 \x00 bytes") and dst.case_stats("neural") == src.case_stats("neural")
        assert [t["episode_id"] for t in dst.list_traces()] == ["e1", "e0"]
        assert dst.episodic_recorded("episodic", "e9") and not dst.episodic_recorded("episodic", "e0")
        assert dst.search("task ü 4", k=1, namespace=("team", "n1"))[0].case.id == cases[4].id
        with pytest.raises(BankError, match="is not empty"):
            copy_bank(src, dst)


def test_the_digest_sees_a_changed_vector_or_row(make_bank):
    bank = make_bank("digest")
    cases = fill(bank)
    before = bank_digest(bank)
    bank.update(cases[0].id, vector=np.ones(64))
    after = bank_digest(bank)
    assert after["cases"] != before["cases"] and after["replay"] == before["replay"]
    bank.append_replay(ReplayRow(policy="neural", episode_id="x", state=np.ones(4, dtype=np.float32), case_ids=(),
                                 case_features=np.zeros((0, 5), dtype=np.float32), reward=0.0, done=True))
    assert bank_digest(bank)["replay"]["count"] == 6


def test_export_import_across_backends(make_bank, other_location):
    src = make_bank("src")
    cases = fill(src)
    out = io.StringIO()
    assert src.export_jsonl(out, with_vectors=True) == 30
    with CaseBank.open(other_location("dst"), embedder=FakeHashEmbedder()) as dst:
        assert dst.import_jsonl(io.StringIO(out.getvalue())) == 30
        assert bank_digest(dst)["cases"] == bank_digest(src)["cases"]
        assert dst.get(cases[5].id) == cases[5]


def test_the_cli_copies_and_refuses_an_existing_file(make_bank, other_location, tmp_path, monkeypatch):
    monkeypatch.setitem(EMBEDDERS, "fake-hash", FakeHashEmbedder)
    src = make_bank("src")
    fill(src)
    runner = CliRunner(env={"MEMENTO_EMBEDDER": "fake-hash"})
    result = runner.invoke(app, ["bank", "copy", str(src.path), other_location("dst")], prog_name="memento")
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    assert '"verified": true' in result.stdout and '"cases": 30' in result.stdout
    taken = tmp_path / "taken.db"
    taken.write_text("")
    result = runner.invoke(app, ["bank", "copy", str(src.path), str(taken)], prog_name="memento")
    assert result.exit_code == 1 and result.stderr.startswith("Error: ") and "already exists" in result.stderr
