"""The openai backend against a real HTTP server process on 127.0.0.1 that fails in every way a server does.

The server (tests/faults/llm_server.py) is its own process, so "killed mid-stream" is a real
SIGKILL with half a body on the wire. Each fault must end in a typed LLMError, within a bounded
number of tries and a bounded time, and a batch must keep every completion the server delivered.
"""

import asyncio
import subprocess
import sys
import threading
import time

import pytest

from memento.errors import LLMConnectionError, LLMResponseError, LLMTimeoutError
from memento.llm.base import Completion
from memento.llm.local_server import free_port
from memento.llm.openai_backend import OpenAILLM
from tests.conftest import ROOT

pytestmark = [pytest.mark.faults, pytest.mark.slow]


class FaultServer:
    """One llm_server process; `log` is what it saw and answered."""

    def __init__(self, folder, port=None, *extra):
        self.port = port or free_port()
        self.log_path = folder / f"server-{self.port}.log"
        self.process = subprocess.Popen([sys.executable, "-m", "tests.faults.llm_server", str(self.port),
                                         str(self.log_path), *extra], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "listening"

    def lines(self, prefix):
        text = self.log_path.read_text() if self.log_path.exists() else ""
        return [line[len(prefix) + 1:] for line in text.splitlines() if line.startswith(prefix + " ")]

    def llm(self, **config):
        defaults = {"model": "m", "backoff_s": 0.05, "max_retries": 2, "timeout_s": 1.5}
        return OpenAILLM(base_url=f"http://127.0.0.1:{self.port}/v1", **{**defaults, **config})

    def stop(self):
        self.process.kill()
        self.process.wait()


@pytest.fixture
def server(tmp_path):
    running = FaultServer(tmp_path)
    yield running
    running.stop()


def ask(llm, content):
    return llm.complete([{"role": "user", "content": content}])


def timed(call):
    started = time.perf_counter()
    try:
        return call(), time.perf_counter() - started
    except Exception as error:  # returned for the test to check
        return error, time.perf_counter() - started


def test_a_refused_connection_is_a_connection_error_after_bounded_tries(tmp_path):
    llm = OpenAILLM(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", backoff_s=0.05, max_retries=3)
    error, elapsed = timed(lambda: ask(llm, "echo:hi"))
    assert isinstance(error, LLMConnectionError) and "check that the server is running" in str(error)
    assert 0.05 + 0.1 + 0.2 <= elapsed < 5.0, "three backoffs, then give up"


def test_500s_are_retried_a_bounded_number_of_times(server):
    error, elapsed = timed(lambda: ask(server.llm(max_retries=3), "fail500"))
    assert isinstance(error, LLMResponseError) and error.status_code == 500
    assert len(server.lines("got")) == 4, "the first try and max_retries=3 retries, no more"
    assert elapsed < 5.0  # bounded: far below the 60 s a stuck call would take


def test_malformed_json_is_a_response_error_and_not_retried(server):
    error, _ = timed(lambda: ask(server.llm(), "badjson"))
    assert isinstance(error, LLMResponseError) and "not a chat completion" in str(error)
    assert len(server.lines("got")) == 1


def test_a_hung_response_times_out_once_without_retrying(server):
    error, elapsed = timed(lambda: ask(server.llm(timeout_s=1.0), "hang-body"))
    assert isinstance(error, LLMTimeoutError) and "within 1.0 s" in str(error)
    assert elapsed < 5.0 and len(server.lines("got")) == 1


def test_a_server_killed_mid_stream_is_a_connection_error(server):
    error, elapsed = timed(lambda: ask(server.llm(), "half"))
    assert isinstance(error, LLMConnectionError), error
    assert server.process.wait(timeout=5) == -9, "the server really died with half a body sent"
    assert elapsed < 5.0  # bounded: far below the 60 s a stuck call would take


def test_a_server_back_before_the_retries_run_out_answers(tmp_path):
    first = FaultServer(tmp_path)
    port = first.port
    first.stop()
    restarted = {}
    threading.Timer(0.3, lambda: restarted.setdefault("server", FaultServer(tmp_path, port))).start()
    try:
        result, _ = timed(lambda: ask(first.llm(max_retries=5, backoff_s=0.2), "echo:back again"))
        assert isinstance(result, Completion) and result.text == "back again", result
    finally:
        time.sleep(0.5)
        if "server" in restarted:
            restarted["server"].stop()


def batch(n):
    return [[{"role": "user", "content": f"echo:request {i}"}] for i in range(n)]


def assert_every_delivered_completion_kept(results, server, n):
    assert len(results) == n
    # "answered" is logged once the answer is written: the server may die between its write and its log line,
    # so a kept completion may lack the line, but every logged one was delivered and must be kept.
    answered = {a.removeprefix("echo:") for a in server.lines("answered")}
    received = {a.removeprefix("echo:") for a in server.lines("got")}
    kept = {r.text for r in results if isinstance(r, Completion)}
    assert answered <= kept <= received, "every completion the server delivered is kept"
    for i, result in enumerate(results):
        assert isinstance(result, (Completion, LLMConnectionError)), result
        if isinstance(result, Completion):
            assert result.text == f"request {i}", "each result in its request's place"
    assert 0 < len(kept) < n, "the server died part-way"


def test_a_batch_across_a_server_death_keeps_every_completion(tmp_path):
    server = FaultServer(tmp_path, None, "--die-after", "5")
    try:
        llm = server.llm(max_retries=1)
        results = llm.complete_many(batch(12), concurrency=3)
        assert_every_delivered_completion_kept(results, server, 12)
        assert llm.usage_total.completion_tokens == sum(isinstance(r, Completion) for r in results)
    finally:
        server.stop()


def test_an_async_batch_across_a_server_death_keeps_every_completion(tmp_path):
    server = FaultServer(tmp_path, None, "--die-after", "5")
    try:
        results = asyncio.run(server.llm(max_retries=1).acomplete_many(batch(12), concurrency=3))
        assert_every_delivered_completion_kept(results, server, 12)
    finally:
        server.stop()


def test_an_answer_trickled_byte_by_byte_still_times_out_on_the_whole_answer(server):
    error, elapsed = timed(lambda: ask(server.llm(timeout_s=1.0), "trickle"))
    assert isinstance(error, LLMTimeoutError), error
    assert elapsed < 5.0, f"timeout_s bounds the whole answer, not each read ({elapsed:.1f} s)"


def test_an_async_answer_trickled_byte_by_byte_still_times_out_on_the_whole_answer(server):
    llm = server.llm(timeout_s=1.0)
    error, elapsed = timed(lambda: asyncio.run(llm.acomplete([{"role": "user", "content": "trickle"}])))
    assert isinstance(error, LLMTimeoutError), error
    assert elapsed < 5.0, f"timeout_s bounds the whole answer, not each read ({elapsed:.1f} s)"
