"""A recovered eval episode reaches the policy exactly once, whichever write the crash came after (issue 15, item 7).

The resume tests on main cover the neural arm at every kill point and the episodic arm after
the case and after the trace; this covers the one left: the episodic arm killed after the record.
"""

from collections import Counter

import pytest

from memento.evals.records import EpisodeLog
from memento.evals.runner import run_eval
from tests.evals.conftest import fictional_config  # noqa: F401  (the fixture)
from tests.evals.fake_episodes import SlowScriptedLLM, gold_echo_handler
from tests.evals.test_runner_resume import AgentOrderEpisodes, policy_steps
from tests.fakes import FakeHashEmbedder

pytestmark = pytest.mark.faults


@pytest.mark.parametrize(("arm", "dies_after"), [("episodic", "record"), ("neural", "record")])
def test_an_episode_killed_after_its_record_is_not_recorded_again(fictional_config, arm, dies_after):  # noqa: F811
    options = {"episodic": {"change_threshold": 0.0}} if arm == "episodic" else {}
    config = fictional_config(arms=[arm], concurrency=1, policy_options=options)
    traces: dict = {}
    crashing = AgentOrderEpisodes(SlowScriptedLLM(gold_echo_handler), traces, fail_after=3, dies_after=dies_after)
    with pytest.raises(KeyboardInterrupt):
        run_eval(config, progress=False, embedder=FakeHashEmbedder(), episodes=crashing)
    run_eval(config, progress=False, embedder=FakeHashEmbedder(),
             episodes=AgentOrderEpisodes(SlowScriptedLLM(gold_echo_handler), traces))

    records = EpisodeLog(config.out_dir / "episodes.jsonl").records
    assert len(records) == 8 and sum(r.recovered for r in records) == 1
    steps = policy_steps(config.out_dir / "arms" / arm, arm)
    if arm == "neural":
        assert sum(steps.values()) == 8 and set(steps.values()) == {1}
    else:
        assert steps == Counter(s.id for r in records for s in r.shown), "one visit per shown case and episode"
