"""Episodes of all arms are really in flight together: N at once finish about N times sooner."""

from datetime import datetime

from memento.evals.records import EpisodeLog
from memento.evals.runner import run_eval
from tests.evals.fake_episodes import FakeAgentEpisodes, SlowScriptedLLM, gold_echo_handler
from tests.fakes import FakeHashEmbedder

DELAY_S = 0.25


def episode_span_s(run_dir) -> float:
    """From the first episode's start to the last one's end, read from the records (set-up excluded)."""
    records = EpisodeLog(run_dir / "episodes.jsonl").records
    ends = [datetime.fromisoformat(r.finished_at).timestamp() for r in records]
    starts = [end - r.seconds for end, r in zip(ends, records)]
    return max(ends) - min(starts)


def run(fictional_config, tmp_path, concurrency):
    llm = SlowScriptedLLM(gold_echo_handler, delay_s=DELAY_S)
    config = fictional_config(out_dir=tmp_path / f"c{concurrency}", iterations=1, concurrency=concurrency)
    summary = run_eval(config, progress=False, embedder=FakeHashEmbedder(), episodes=FakeAgentEpisodes(llm))
    return summary, llm, episode_span_s(config.out_dir)


def test_n_episodes_in_flight_finish_about_n_times_faster_than_one_at_a_time(fictional_config, tmp_path):
    sequential, sequential_llm, sequential_s = run(fictional_config, tmp_path, concurrency=1)
    concurrent, concurrent_llm, concurrent_s = run(fictional_config, tmp_path, concurrency=4)

    assert sequential.episodes == concurrent.episodes == 8
    assert sequential_llm.max_in_flight == 1
    assert concurrent_llm.max_in_flight == 4
    assert sequential_s >= 8 * DELAY_S
    speedup = sequential_s / concurrent_s
    print(f"speedup {speedup:.2f}x ({sequential_s:.2f}s vs {concurrent_s:.2f}s)")
    assert speedup >= 2.5, f"4 in flight were only {speedup:.2f}x faster ({sequential_s:.2f}s vs {concurrent_s:.2f}s)"
