"""Embedders: torch threads from the cores this process may use, and vectors checked with a message per problem."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from memento.embedders import THREADS_ENV, as_query_matrix, as_vector, available_cores, embedder_threads
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


@pytest.mark.parametrize("value, fragment", [
    ([float("nan")] * 4, "embedding holds 4 NaN or infinite value(s) among 4; embeddings must be finite"),
    ([1.0, 2.0, 3.0, float("inf")], "embedding holds 1 NaN or infinite value(s) among 4"),
    ([1.0, 2.0], "embedding has 2 numbers but this bank's embeddings have 4"),
    ("abc", "embedding is not a list of numbers"),
    ([[1.0], [1.0, 2.0]], "embedding is not a list of numbers"),
    (3.0, "embedding is the single number 3.0, not a list of 4"),
])
def test_a_stored_embedding_gets_the_message_for_its_own_problem(value, fragment):
    with pytest.raises(ValidationError) as caught:
        as_vector(value, 4)
    assert fragment in str(caught.value) and "leave it out to embed the task again" in str(caught.value)


def test_a_stored_embedding_is_kept_bit_for_bit():
    vector = np.array([0.6, 0.8, 0.0, 1e-8], dtype=np.float32)
    assert as_vector(vector.tolist(), 4).tobytes() == vector.tobytes()


@pytest.mark.parametrize("value, fragment", [
    ([float("nan")] * 4, "query vector holds 4 NaN or infinite value(s) among 4"),
    (np.full(4, np.nan, dtype=np.float32), "query vector holds 4 NaN or infinite value(s) among 4"),
    (["a", "b", "c", "d"], "query vector is not a list of numbers"),
    ([1.0, 2.0], "query vector has shape (2,) but this bank's embeddings have dim 4"),
])
def test_a_query_vector_gets_the_message_for_its_own_problem(value, fragment):
    with pytest.raises(ValidationError, match=re.escape(fragment)):
        as_query_matrix(value, 4)
