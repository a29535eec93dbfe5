"""`memento policy show | rank`, `cases search --policy` and `cases prune --policy`, with a policy trained here."""

import json
import shutil

import pytest

from memento import policies
from memento import CaseBank
from tests.cli.fixture_cases import CASES
from tests.fakes import FakeHashEmbedder

pytestmark = pytest.mark.slow  # torch: its import and first steps take seconds on a busy machine


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A bank of CASES and a neural policy that learned on it that acme-1 helps with Acme questions
    and acme-2 does not. Built once: torch's first steps take seconds on a busy machine."""
    folder = tmp_path_factory.mktemp("trained")
    with CaseBank(folder / "cases.db", FakeHashEmbedder()) as memory:
        memory.add_many(CASES)
        policy = policies.make_policy("neural", memory, min_replay=2, gradient_steps=4, seed=0)
        state = policies.TaskState.from_task(memory, "Who founded the Acme company?")
        for _ in range(6):
            policy.record(state, ["acme-1"], 1.0)
            policy.record(state, ["acme-2"], 0.0)
            policy.update()
        policy.save(folder / "policy.pt")
    return folder


@pytest.fixture
def bank(cli, trained):
    """A fresh copy of the trained bank (its policy tables included) in the test's folder."""
    for name in ("cases.db", "cases.db.faiss", "policy.pt"):
        shutil.copy(trained / name, cli.folder / name)
    return cli.folder / "cases.db"


@pytest.fixture
def policy_file(bank):
    return bank.parent / "policy.pt"


def test_search_with_a_policy_shows_both_scores(cli, bank, policy_file):
    hits = cli.ok("cases", "search", "Who founded the Acme company?", "-k", "2", "--policy", policy_file,
                  "--namespace", "acme", "--bank", bank)
    assert len(hits) == 2 and all({"policy_score", "score"} <= set(h) for h in hits)
    assert [h["policy_score"] for h in hits] == sorted((h["policy_score"] for h in hits), reverse=True)
    assert all(h["namespace"] == "acme" for h in hits)


def test_search_with_a_policy_refuses_filters_it_cannot_apply(cli, bank, policy_file):
    assert "does not combine with --min-reward" in cli.fails(
        "cases", "search", "Acme", "--policy", policy_file, "--min-reward", "1", "--bank", bank)


def test_a_policy_from_another_embedder_is_refused(cli, bank, policy_file, tmp_path):
    CaseBank(tmp_path / "other.db", FakeHashEmbedder(dim=32, name="other-model")).close()
    from memento.cli.banks import EMBEDDERS

    EMBEDDERS["other-model"] = lambda: FakeHashEmbedder(dim=32, name="other-model")
    try:
        line = cli.fails("cases", "search", "Acme", "--policy", policy_file, "--bank", "other.db",
                         env={"MEMENTO_EMBEDDER": "other-model"})
    finally:
        del EMBEDDERS["other-model"]
    assert "was trained with embedder 'fake-hash'" in line


def test_a_file_that_is_not_a_policy_is_refused(cli, bank):
    (cli.folder / "notes.pt").write_text("not a checkpoint")
    assert "is not a policy checkpoint" in cli.fails("policy", "show", "notes.pt", "--bank", bank)
    assert "does not exist" in cli.fails("policy", "rank", "none.pt", "--bank", bank)


def test_policy_show_reports_steps_and_what_the_policy_says(cli, bank, policy_file):
    shown = cli.ok("policy", "show", policy_file, "--bank", bank)
    assert shown["kind"] == "neural" and shown["step"] == 24 and shown["bytes"] == policy_file.stat().st_size
    assert shown["embedder"] == {"name": "fake-hash", "dim": 64}


def test_policy_rank_puts_the_helpful_case_above_the_harmful_one(cli, bank, policy_file):
    ranked = [r["id"] for r in cli.ok("policy", "rank", policy_file, "--namespace", "acme", "--bank", bank)]
    assert ranked.index("acme-1") < ranked.index("acme-2")
    worst_first = cli.ok("policy", "rank", policy_file, "--ascending", "--limit", "1", "--namespace", "acme", "--bank", bank)
    assert len(worst_first) == 1 and worst_first[0]["usefulness"] <= min(
        r["usefulness"] for r in cli.ok("policy", "rank", policy_file, "--namespace", "acme", "--bank", bank))


def test_prune_by_usefulness_removes_what_the_policy_rates_low(cli, bank, policy_file):
    ranked = cli.ok("policy", "rank", policy_file, "--namespace", "acme", "--ascending", "--bank", bank)
    cutoff = ranked[0]["usefulness"]
    pruned = cli.ok("cases", "prune", "--policy", policy_file, "--max-usefulness", json.dumps(cutoff),
                    "--namespace", "acme", "--yes", "--bank", bank)
    assert pruned["deleted"] >= 1 and ranked[0]["id"] in open(pruned["trash"]).read()


def test_a_policy_that_learns_nothing_cannot_rank(cli, bank):
    with CaseBank(bank, FakeHashEmbedder(), create=False) as memory:
        policies.make_policy("similarity", memory).save(cli.folder / "similarity.pt")
    assert "cannot rank them" in cli.fails("policy", "rank", "similarity.pt", "--bank", bank)
