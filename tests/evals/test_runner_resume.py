"""A run stopped part-way and started again ends with every episode exactly once."""

import json
from collections import Counter

import pytest

from memento.evals.episode import EpisodeOutcome
from memento.evals.records import EpisodeLog, EpisodeRecord, ShownCase
from memento.evals.runner import run_eval
from memento import CaseBank
from memento.case import Case
from memento.policy import TaskState
from memento.policies import load_policy
from tests.evals.fake_episodes import FakeAgentEpisodes, SlowScriptedLLM, gold_echo_handler
from tests.fakes import FakeHashEmbedder


def logged_keys(run_dir):
    lines = (run_dir / "episodes.jsonl").read_text().splitlines()
    return [tuple(json.loads(line)[k] for k in ("arm", "phase", "iteration", "task_id", "attempt")) for line in lines]


def test_interrupted_run_resumes_without_losing_or_repeating_episodes(fictional_config):
    config = fictional_config()
    expected = 4 * 2 * 2  # tasks x passes x arms
    with pytest.raises(KeyboardInterrupt):
        run_eval(config, progress=False, embedder=FakeHashEmbedder(), episodes=FakeAgentEpisodes(SlowScriptedLLM(gold_echo_handler), fail_after=5))
    done_before = len(logged_keys(config.out_dir))
    assert 0 < done_before < expected

    resumed = FakeAgentEpisodes(SlowScriptedLLM(gold_echo_handler))
    summary = run_eval(config, progress=False, embedder=FakeHashEmbedder(), episodes=resumed)

    keys = logged_keys(config.out_dir)
    assert len(keys) == len(set(keys)) == expected == summary.episodes
    assert resumed.calls == expected - done_before, "done episodes must not run again"
    with CaseBank(config.out_dir / "arms" / "similarity" / "bank.db", embedder=FakeHashEmbedder()) as bank:
        assert bank.count() == expected // 2, "one case per learning episode of the arm, none twice"
    manifest = json.loads((config.out_dir / "manifest.json").read_text())
    assert [i["episodes_already_done"] for i in manifest["invocations"]] == [0, done_before]


def test_episode_that_wrote_its_case_before_the_crash_is_recovered_not_rerun(fictional_config):
    config = fictional_config(arms=["similarity"], concurrency=1)
    crashing = FakeAgentEpisodes(SlowScriptedLLM(gold_echo_handler), fail_after=3, crash_after_case_write=True)
    with pytest.raises(KeyboardInterrupt):
        run_eval(config, progress=False, embedder=FakeHashEmbedder(), episodes=crashing)
    assert len(logged_keys(config.out_dir)) == 3

    resumed = FakeAgentEpisodes(SlowScriptedLLM(gold_echo_handler))
    run_eval(config, progress=False, embedder=FakeHashEmbedder(), episodes=resumed)

    records = EpisodeLog(config.out_dir / "episodes.jsonl").records
    assert len(records) == 8 and len({r.key for r in records}) == 8
    recovered = [r for r in records if r.recovered]
    assert len(recovered) == 1 and recovered[0].case_id is not None
    assert resumed.calls == 8 - 4, "the episode whose case is in the bank is not run again"
    with CaseBank(config.out_dir / "arms" / "similarity" / "bank.db", embedder=FakeHashEmbedder()) as bank:
        assert bank.count() == 8
        assert Counter(c.id for c in bank.iter_cases()).most_common(1)[0][1] == 1


class AgentOrderEpisodes(FakeAgentEpisodes):
    """The agent's order of writes in a learning episode: the case; the outcome recorded with the policy
    under the episode's id (the case id); the trace, into `traces` (the trace store, shared by the
    runs on one folder). Episode number `fail_after` dies, like kill -9, after the case write
    (`dies_after="case"`), after the record (`"record"`) or after the trace (`"trace"`)."""

    def __init__(self, llm, traces: dict, *, fail_after: int | None = None, dies_after: str = "case"):
        super().__init__(llm, fail_after=fail_after)
        self.traces = traces
        self.dies_after = dies_after

    async def arun(self, task, arm, *, case_id, explore, reward, exclude=None):
        number, self.calls = self.calls, self.calls + 1
        dies = number == self.fail_after
        state = TaskState.from_task(arm.bank, task.question, **({"episode_id": case_id} if case_id else {}))
        shown = arm.policy.select(state, explore=explore, **({"exclude": exclude} if exclude is not None else {}))
        answer = (await self.llm.acomplete([{"role": "user", "content": task.question + "".join(
            f"\nPast answer: {s.case.answer}" for s in shown)}])).text
        if case_id is not None:
            value = reward(answer)
            arm.bank.add(Case(id=case_id, task=task.question, answer=answer, reward=value,
                              metadata={"selected_cases": [{"id": s.case.id, "score": s.score} for s in shown]}),
                         vector=state.embedding)
            if dies and self.dies_after == "case":
                raise KeyboardInterrupt
            arm.policy.record(state, [s.case.id for s in shown], value)
            arm.policy.update()
            if dies and self.dies_after == "record":
                raise KeyboardInterrupt
            self.traces[case_id] = {"episode_id": case_id, "selected": [s.case.id for s in shown]}
            if dies:
                raise KeyboardInterrupt
        return EpisodeOutcome(answer=answer, steps=1, learned=case_id is not None,
                              shown=[ShownCase(id=s.case.id, score=s.score, similarity=s.similarity) for s in shown])

    def recover(self, task, arm, case_id):
        outcome = super().recover(task, arm, case_id)
        if outcome is not None:
            outcome.trace = self.traces.get(case_id)
        return outcome


def policy_steps(arm_dir, arm: str) -> Counter:
    """What the arm's policy holds per recorded step: replay rows by episode id (neural), or the entries'
    visits by case (episodic: each record adds one visit per shown case)."""
    with CaseBank(arm_dir / "bank.db", embedder=FakeHashEmbedder()) as bank:
        policy = load_policy(arm_dir / "policy.pt", bank)
        if arm == "neural":
            return Counter(t.episode_id for t in policy.replay.transitions)
        return Counter({case_id: int(entries.visits.sum()) for case_id, entries in policy.entries.items()})


@pytest.mark.parametrize(("arm", "dies_after"), [("neural", "case"), ("neural", "record"), ("neural", "trace"),
                                                 ("episodic", "case"), ("episodic", "trace")])
def test_a_recovered_episode_reaches_the_policy_exactly_once(fictional_config, arm, dies_after):
    # Without change detection, which deletes entries, every record of the episodic arm stays countable.
    options = {"episodic": {"change_threshold": 0.0}} if arm == "episodic" else {}
    config = fictional_config(arms=[arm], concurrency=1, policy_options=options)
    traces: dict = {}
    crashing = AgentOrderEpisodes(SlowScriptedLLM(gold_echo_handler), traces, fail_after=3, dies_after=dies_after)
    with pytest.raises(KeyboardInterrupt):
        run_eval(config, progress=False, embedder=FakeHashEmbedder(), episodes=crashing)

    run_eval(config, progress=False, embedder=FakeHashEmbedder(),
             episodes=AgentOrderEpisodes(SlowScriptedLLM(gold_echo_handler), traces))

    records = EpisodeLog(config.out_dir / "episodes.jsonl").records
    assert len(records) == 8 and all(r.learned for r in records) and sum(r.recovered for r in records) == 1
    steps = policy_steps(config.out_dir / "arms" / arm, arm)
    if arm == "neural":
        assert sum(steps.values()) == 8, "one replay row per learned episode, the recovered one included"
        assert set(steps) == {r.case_id for r in records} and set(steps.values()) == {1}
    else:
        assert steps == Counter(s.id for r in records for s in r.shown), "one visit per shown case and episode"
        assert sum(len(r.shown) for r in records if r.recovered) > 0, "the recovered episode was shown cases"


def test_a_line_cut_off_by_a_crash_is_dropped_and_its_episode_counts_as_not_done(tmp_path):
    path = tmp_path / "episodes.jsonl"
    record = EpisodeRecord(arm="none", phase="train", iteration=1, task_id="t1", question="q?", source="s",
                           benchmark="qa", gold=["a"])
    path.write_text(record.model_dump_json() + "\n" + record.model_copy(update={"task_id": "t2"}).model_dump_json()[:40])

    log = EpisodeLog(path)

    assert [r.task_id for r in log.records] == ["t1"]
    assert path.read_text().endswith("\n")
    assert log.append(record.model_copy(update={"task_id": "t2"}))
    assert not log.append(record), "a key already logged is never written twice"
    assert [r.task_id for r in EpisodeLog(path).records] == ["t1", "t2"]


def test_resuming_a_folder_with_another_config_is_refused(fictional_config):
    from memento.errors import ValidationError

    run_eval(fictional_config(iterations=1, arms=["none"]), progress=False,
             episodes=FakeAgentEpisodes(SlowScriptedLLM(gold_echo_handler)))
    with pytest.raises(ValidationError, match="another config"):
        run_eval(fictional_config(iterations=1, arms=["none"], k=2), progress=False,
                 episodes=FakeAgentEpisodes(SlowScriptedLLM(gold_echo_handler)))


@pytest.mark.slow
def test_run_killed_with_sigkill_resumes_to_every_episode_once(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.evals.eval_process import config

    run_dir = tmp_path / "run"
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    process = subprocess.Popen([sys.executable, "-m", "tests.evals.eval_process", str(run_dir), "0.3"], cwd=root)
    episodes = run_dir / "episodes.jsonl"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        if episodes.exists() and len(episodes.read_text().splitlines()) >= 5:
            break
        time.sleep(0.05)
    assert process.poll() is None, "the run ended before it could be killed"
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    done_before = len(logged_keys(run_dir))
    expected = 6 * 2 * 2
    assert 5 <= done_before < expected

    resumed = FakeAgentEpisodes(SlowScriptedLLM(gold_echo_handler))
    summary = run_eval(config(run_dir), progress=False, embedder=FakeHashEmbedder(), episodes=resumed)

    keys = logged_keys(run_dir)
    assert len(keys) == len(set(keys)) == expected == summary.episodes
    records = EpisodeLog(episodes).records
    assert resumed.calls + sum(r.recovered for r in records) == expected - done_before
    with CaseBank(run_dir / "arms" / "similarity" / "bank.db", embedder=FakeHashEmbedder()) as bank:
        assert bank.count() == expected // 2
