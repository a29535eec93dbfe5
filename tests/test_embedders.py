"""The embedder's torch threads follow the cores this process may use, not the machine or torch's own default."""

import os
import subprocess
import sys

import pytest

from memento.embedders import THREADS_ENV, available_cores, embedder_threads
from memento.errors import ValidationError
from tests.conftest import ROOT


def test_threads_default_to_the_cores_available_and_can_be_set(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert available_cores() == len(os.sched_getaffinity(0))
    assert embedder_threads() == available_cores()
    assert embedder_threads(3) == 3
    monkeypatch.setenv(THREADS_ENV, "1")
    assert embedder_threads() == 1 and embedder_threads(2) == 2  # the argument wins over the environment


@pytest.mark.parametrize("threads, env, fragment", [
    (0, None, "embedder threads 0 is not a positive whole number"),
    (1.5, None, "embedder threads 1.5"),
    (None, "two", f"{THREADS_ENV}='two' is not a whole number"),
])
def test_a_bad_thread_count_is_a_validation_error(monkeypatch, threads, env, fragment):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    if env is not None:
        monkeypatch.setenv(THREADS_ENV, env)
    with pytest.raises(ValidationError, match=fragment):
        embedder_threads(threads)


PINNED = """
import os, sys
import torch
torch.set_num_threads(4)  # what torch had before: OMP_NUM_THREADS, the whole machine, another component
os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})  # then the process is pinned to one core
from memento.embedders import SentenceTransformerEmbedder

embedder = SentenceTransformerEmbedder(threads=int(sys.argv[1]) if len(sys.argv) > 1 else None)
seen = []
encode = embedder.model.encode
embedder.model.encode = lambda *args, **kwargs: seen.append(torch.get_num_threads()) or encode(*args, **kwargs)
vectors = embedder.embed(["one text", "another text"])
print(embedder.threads, seen[0], torch.get_num_threads(), vectors.shape[1])
"""


@pytest.mark.slow  # loads the real packaged model, twice
def test_the_real_embedder_runs_on_the_cores_it_is_pinned_to_and_restores_torch():
    def run(*args, env=None):
        environment = {k: v for k, v in os.environ.items() if k != THREADS_ENV} | (env or {})
        done = subprocess.run([sys.executable, "-c", PINNED, *args], cwd=ROOT, env=environment,
                              capture_output=True, text=True, check=True)
        return done.stdout.split()

    assert run() == ["1", "1", "4", "384"]  # one core: one thread while embedding, torch's 4 restored after
    assert run(env={THREADS_ENV: "3"}) == ["3", "3", "4", "384"]
