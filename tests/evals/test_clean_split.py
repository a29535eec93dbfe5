"""The clean split: memory built on train tasks, scored on disjoint test tasks, with the same-task guard."""

import pytest

from memento.evals.config import EvalConfig, TaskSpec
from memento.evals.records import EpisodeLog
from memento.evals.runner import run_eval
from memento.errors import ValidationError
from tests.evals.fake_episodes import FakeAgentEpisodes, SlowScriptedLLM, gold_echo_handler
from tests.fakes import FakeHashEmbedder

GOLD = {"hotpotqa-1": "Ada Vell", "hotpotqa-2": "Dunmere", "hotpotqa-3": "Orlen"}


def split_config(out_dir, train, test, **overrides):
    return EvalConfig(out_dir=out_dir, protocol="split", tasks=TaskSpec(source="qa", path=str(train)),
                      test_tasks=TaskSpec(source="deepresearcher", path=str(test)), arms=["similarity"],
                      iterations=1, k=2, concurrency=1, **overrides)


def scored_pass(run_dir):
    return {r.task_id: r for r in EpisodeLog(run_dir / "episodes.jsonl").records if r.phase == "test"}


def run(config):
    # Memory holds each train task's gold answer, and the scripted model repeats the first shown case's
    # answer: a test task can only be right by seeing its own question's case. The guard compares
    # texts, so the fake embedder (which gives equal word bags equal vectors) is enough.
    episodes = FakeAgentEpisodes(SlowScriptedLLM(gold_echo_handler), answer_key=GOLD)
    return run_eval(config, progress=False, episodes=episodes, embedder=FakeHashEmbedder())


def test_guard_removes_cases_of_the_same_question_before_the_agent_sees_them(tmp_path, split_files):
    train, test = split_files
    summary = run(split_config(tmp_path / "guarded", train, test))

    scored = scored_pass(tmp_path / "guarded")
    repeated = scored["t1"]
    assert len(repeated.same_task_excluded) == 1
    assert repeated.same_task_excluded[0] not in {case.id for case in repeated.shown}
    assert len(repeated.shown) == 2, "the guard fills the k slots with other cases"
    assert repeated.same_task_shown == []
    assert repeated.scores["em"] == 0.0, "without its own case the scripted model cannot know the answer"
    assert all(not r.same_task_excluded for task_id, r in scored.items() if task_id != "t1")
    assert all(not r.learned and r.case_id is None for r in scored.values()), "the test pass does not learn"
    test_row = next(r for r in summary.by_iteration if r.phase == "test")
    assert test_row.same_task_excluded == 1 and test_row.n == 3


def test_without_the_guard_the_leak_is_reported(tmp_path, split_files):
    train, test = split_files
    run(split_config(tmp_path / "open", train, test, exclude_same_task=False))

    repeated = scored_pass(tmp_path / "open")["t1"]
    assert len(repeated.same_task_shown) == 1 and repeated.same_task_excluded == []
    assert repeated.scores["em"] == 1.0, "the case of the very same question gives the answer away"


def test_split_reports_in_and_out_of_domain(tmp_path, split_files):
    train, test = split_files
    summary = run(split_config(tmp_path / "domains", train, test))

    assert {(r.group, r.n) for r in summary.by_domain} == {("in", 1), ("out", 2)}
    assert {r.group for r in summary.by_source} == {"hotpotqa", "musique", "bamboogle"}
    for name in ("accuracy_by_domain.png", "accuracy_by_source.png"):
        assert (tmp_path / "domains" / name).read_bytes().startswith(b"\x89PNG")
    report = (tmp_path / "domains" / "report.md").read_text()
    assert "## By source (test pass)" in report and "## In-domain against out-of-domain (test pass)" in report


def test_split_refuses_sets_that_share_a_task(tmp_path, split_files):
    train, _ = split_files
    config = EvalConfig(out_dir=tmp_path / "same", protocol="split", tasks=TaskSpec(source="qa", path=str(train)),
                        test_tasks=TaskSpec(source="qa", path=str(train), limit=1), arms=["none"], iterations=1)
    with pytest.raises(ValidationError, match="disjoint"):
        run(config)
