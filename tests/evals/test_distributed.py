"""Many workers, one learner (evals/distributed.py): real worker and learner processes on one run folder.

The agent is the fake of tests/evals/fake_episodes.py (a ScriptedLLM, the real banks and
policies), built in each worker process; the banks are real SQLite files shared by the processes.
"""

import json
from collections import Counter

import pytest

from memento.evals.config import EvalConfig, TaskSpec
from memento.evals.distributed import VERSION_FILE, read_version, run_distributed
from memento.evals.runner import run_eval
from memento import CaseBank
from memento.errors import ValidationError
from memento.policies import load_policy
from tests.evals.fake_episodes import distributed_episodes
from tests.fakes import FakeHashEmbedder

FACTORIES = {"episodes_factory": "tests.evals.fake_episodes:distributed_episodes",
             "embedder_factory": "tests.fakes:FakeHashEmbedder"}


def config(run_dir, **changes):
    return EvalConfig(out_dir=run_dir, tasks=TaskSpec(source="fictional", limit=12, options={"n_entities": 40}),
                      arms=["none", "neural"], iterations=2, concurrency=2,
                      policy_options={"neural": {"min_replay": 1}}, **changes)


@pytest.mark.slow
def test_three_workers_and_a_learner_run_every_episode_once_the_learner_trains_on_all_and_resume_redoes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    summary = run_distributed(config(run_dir), workers=3, progress=False, **FACTORIES)
    lines = [json.loads(line) for line in (run_dir / "episodes.jsonl").read_text().splitlines()]
    keys = Counter((r["arm"], r["phase"], r["iteration"], r["task_id"], r["attempt"]) for r in lines)
    assert len(keys) == 12 * 2 * 2 and set(keys.values()) == {1}, "every episode exactly once"
    assert all(r["error"] is None for r in lines)
    assert summary.episodes == 48 and summary.complete
    learned = sum(1 for r in lines if r["arm"] == "neural" and r["learned"])
    checkpoint = run_dir / "arms" / "neural" / "policy.pt"
    assert read_version(checkpoint) >= 1
    bank = CaseBank(run_dir / "arms" / "neural" / "bank.db", embedder=FakeHashEmbedder())
    try:
        assert bank.count() == learned == 24
        policy = load_policy(checkpoint, bank)
        # One update per recorded step, done by the learner alone (workers never train).
        assert len(policy.replay) == 24 and policy.step >= 2 * (24 - 1)
        policy.close()
    finally:
        bank.close()
    before = (run_dir / "episodes.jsonl").read_bytes()
    run_distributed(config(run_dir), workers=2, progress=False, **FACTORIES)  # resumed when finished: nothing to do
    assert (run_dir / "episodes.jsonl").read_bytes() == before


@pytest.mark.slow
def test_a_distributed_run_leaves_the_same_files_as_a_single_process_run(tmp_path):
    one, many = tmp_path / "one", tmp_path / "many"
    run_eval(config(one), progress=False, embedder=FakeHashEmbedder(), episodes=distributed_episodes())
    run_distributed(config(many), workers=2, progress=False, **FACTORIES)
    def files(root):
        return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file() and VERSION_FILE not in p.name
                and not p.name.endswith(("-wal", "-shm"))}
    assert files(one) == files(many)
    a, b = (json.loads((d / "summary.json").read_text()) for d in (one, many))
    assert a.keys() == b.keys() and a["episodes"] == b["episodes"]


@pytest.mark.parametrize("workers", [0, -1, 1.5, "2"])
def test_workers_must_be_a_positive_integer(tmp_path, workers):
    with pytest.raises(ValidationError, match="positive integer"):
        run_distributed(config(tmp_path / "run"), workers=workers, progress=False, **FACTORIES)
    assert not (tmp_path / "run").exists()


def test_the_main_job_takes_workers_and_server_urls(tmp_path):
    from memento.evals.main_job import parse_args, server_llm

    args = parse_args(["--workers", "4", "--llm-url", "http://127.0.0.1:8000/v1,http://127.0.0.1:8001/v1"])
    assert args.workers == 4
    one, many = server_llm(["http://127.0.0.1:8000/v1"]), server_llm(args.llm_url.split(","))
    assert (one.backend, one.options["base_url"]) == ("openai", "http://127.0.0.1:8000/v1")
    assert (many.backend, len(many.options["base_urls"])) == ("balanced", 2)


@pytest.mark.slow
@pytest.mark.postgres
def test_workers_and_the_learner_share_postgresql_banks(tmp_path, postgres_url):
    """The arms' banks in PostgreSQL schemas (bank_url): the same run, nothing in SQLite files."""
    import uuid

    prefix = "d" + uuid.uuid4().hex[:10]
    url = f"{postgres_url}{'&' if '?' in postgres_url else '?'}schema={prefix}"
    run_dir = tmp_path / "run"
    summary = run_distributed(config(run_dir, bank_url=url), workers=2, progress=False, **FACTORIES)
    assert summary.episodes == 48 and summary.errored_episodes == 0
    assert not list(run_dir.glob("arms/*/bank.db")), "no SQLite bank beside the PostgreSQL ones"
    checkpoint = run_dir / "arms" / "neural" / "policy.pt"
    assert read_version(checkpoint) >= 1
    with CaseBank.open(url, FakeHashEmbedder(), schema=f"{prefix}_neural") as bank:
        assert bank.count() == 24
        policy = load_policy(checkpoint, bank)
        assert len(policy.replay) == 24
        policy.close()


def test_a_bank_url_with_a_password_is_refused_before_anything_is_written(tmp_path):
    with pytest.raises(Exception, match="PGPASSWORD"):
        config(tmp_path / "run", bank_url="postgresql://me:secret@db.example/memento")
    with pytest.raises(Exception, match="postgresql://"):
        config(tmp_path / "run", bank_url="sqlite:///x.db")


def test_a_worker_keeps_its_own_prior_duel_when_it_reloads_the_learners_checkpoint(tmp_path):
    """Only the worker knows which of its episodes probed similarity's picks; a reload used to forget them all."""
    from memento.envs.case_usefulness import CaseUsefulnessEnv, UsefulnessEnvConfig
    from memento.evals.distributed import ActorPolicy, write_progress
    from memento.policies import make_policy

    env = CaseUsefulnessEnv.create(tmp_path / "bank.db", UsefulnessEnvConfig(seed=0))
    policy, similarity = make_policy("neural", env.bank), make_policy("similarity", env.bank)
    checkpoint = policy.save(tmp_path / "policy.pt")
    worker = ActorPolicy(policy, env.bank, checkpoint)
    task = env.train_tasks[0]
    prior_picks = [s.case.id for s in similarity.select(env.state(task), k=4)]
    for _ in range(40):  # similarity's picks always succeed here, the policy's own never
        state = env.state(task)
        shown = [s.case.id for s in worker.select(state, k=4, explore=True)]
        worker.record(state, shown, float(shown == prior_picks))
        worker.update()
    assert [s.case.id for s in worker.select(env.state(task), k=4)] == prior_picks
    policy.save(checkpoint)
    write_progress(checkpoint, 1, 0)  # as the learner does after each save
    worker.update()
    assert worker.policy is not policy and worker.reloads == 1
    assert [s.case.id for s in worker.select(env.state(task), k=4)] == prior_picks, "the reloaded worker forgot its duel"
