"""A run of the eval runner in its own process, for the test that kills it with SIGKILL.

    python -m tests.evals.eval_process RUN_DIR
"""

import sys
from pathlib import Path

from memento.evals.config import EvalConfig, TaskSpec
from memento.evals.runner import run_eval
from tests.evals.fake_episodes import FakeAgentEpisodes, SlowScriptedLLM, gold_echo_handler
from tests.fakes import FakeHashEmbedder


def config(run_dir: Path) -> EvalConfig:
    return EvalConfig(out_dir=run_dir, tasks=TaskSpec(source="fictional", limit=6, options={"n_entities": 40}),
                      arms=["none", "similarity"], iterations=2, concurrency=2)


if __name__ == "__main__":
    llm = SlowScriptedLLM(gold_echo_handler, delay_s=float(sys.argv[2]) if len(sys.argv) > 2 else 0.0)
    run_eval(config(Path(sys.argv[1])), progress=False, embedder=FakeHashEmbedder(), episodes=FakeAgentEpisodes(llm))
