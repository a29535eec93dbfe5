"""The openai backend against a real, misbehaving HTTP server on 127.0.0.1.

The server is a small threading http.server written here: the first part of the URL path picks
a behaviour (an error status, garbage, a stall, a dropped connection), so each test sees exactly
the failure it is about. Nothing may hang: every call ends within its timeout plus a margin.
"""

import asyncio
import json
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from memento.errors import LLMConnectionError, LLMResponseError, LLMTimeoutError
from memento.llm.local_server import free_port
from memento.llm.openai_backend import OpenAILLM

MESSAGES = [{"role": "user", "content": "hello"}]
STALL_S = 5.0


def completion_body(text="hi there", model="scripted-server"):
    return {
        "id": "x", "object": "chat.completion", "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9},
    }


class MisbehavingServer(ThreadingHTTPServer):
    """Counts hits per behaviour key and tracks how many requests overlap."""

    daemon_threads = True
    block_on_close = False  # stalled handlers must not hold up shutdown

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: Counter = Counter()
        self.lock = threading.Lock()
        self.in_flight = self.peak_in_flight = 0
        self.stop_stalling = threading.Event()
        self.bodies: list[dict] = []


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        server: MisbehavingServer = self.server
        key = self.path.strip("/").split("/")[0]
        behaviour = key.split("-")[0]
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with server.lock:
            server.hits[key] += 1
            hits = server.hits[key]
            server.bodies.append(body)
        if behaviour == "ok":
            return self.reply(200, completion_body(model=body["model"]))
        if behaviour == "fail500":  # 500 on the first try, then a completion
            return self.reply(500, {"error": "boom"}) if hits == 1 else self.reply(200, completion_body())
        if behaviour == "busy429":
            if hits == 1:
                return self.reply(429, {"error": "slow down"}, headers={"Retry-After": "0"})
            return self.reply(200, completion_body())
        if behaviour == "always503":
            return self.reply(503, {"error": "overloaded"})
        if behaviour == "bad400":
            return self.reply(400, {"error": "max_tokens too large"})
        if behaviour == "garbage":
            return self.reply_raw(200, b"<html>this is not json</html>")
        if behaviour == "nochoices":
            return self.reply(200, {"object": "error", "message": "no choices here"})
        if behaviour == "stall":
            server.stop_stalling.wait(STALL_S)
            return self.reply(200, completion_body())
        if behaviour == "hangup":  # read the request, then drop the connection without a word
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return None
        if behaviour == "slow":  # a well-behaved but slow server, to count overlapping requests
            with server.lock:
                server.in_flight += 1
                server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
            time.sleep(0.3)
            with server.lock:
                server.in_flight -= 1
            return self.reply(200, completion_body(text=body["messages"][-1]["content"]))
        if behaviour == "bymessage":  # the message says what to do: "refuse" a 400, "stall" a stall, else echo
            content = body["messages"][-1]["content"]
            if content.startswith("refuse"):
                return self.reply(400, {"error": f"cannot answer {content!r}"})
            if content.startswith("stall"):
                server.stop_stalling.wait(STALL_S)
            return self.reply(200, completion_body(text=content))
        return self.reply(404, {"error": f"no behaviour {behaviour!r}"})

    def reply(self, status, payload, headers=None):
        self.reply_raw(status, json.dumps(payload).encode(), headers)

    def reply_raw(self, status, data, headers=None):
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up first (the timeout tests)


@pytest.fixture(scope="module")
def server():
    server = MisbehavingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.stop_stalling.set()
    server.shutdown()
    server.server_close()


def client(server, behaviour, **config):
    """An OpenAI backend whose base URL routes to one behaviour, with a fresh key so hits count from 0."""
    key = f"{behaviour}-{uuid.uuid4().hex[:8]}"
    defaults = {"model": "m", "backoff_s": 0.01, "max_retries": 2, "timeout_s": 2.0}
    llm = OpenAILLM(base_url=f"http://127.0.0.1:{server.server_port}/{key}/v1", **{**defaults, **config})
    return llm, key


def test_a_healthy_answer_is_parsed_with_usage(server):
    llm, key = client(server, "ok")
    completion = llm.complete(MESSAGES, max_tokens=5, stop=["\n"])
    assert (completion.text, completion.model, completion.finish_reason) == ("hi there", "m", "stop")
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (7, 2)
    assert llm.usage_total.total_tokens == 9
    sent = server.bodies[-1]
    assert (sent["max_tokens"], sent["stop"], sent["temperature"]) == (5, ["\n"], 0.0)


def test_lora_is_addressed_by_model_name_and_schema_as_response_format(server):
    llm, key = client(server, "ok")
    schema = {"type": "object", "properties": {"a": {"type": "string"}}, "title": "My Output"}
    assert llm.complete(MESSAGES, lora="tiny", json_schema=schema).model == "tiny"
    sent = server.bodies[-1]
    assert sent["model"] == "tiny"
    assert sent["response_format"] == {
        "type": "json_schema", "json_schema": {"name": "My_Output", "schema": schema, "strict": True}
    }


def test_a_500_is_retried_and_the_retry_succeeds(server):
    llm, key = client(server, "fail500")
    assert llm.complete(MESSAGES).text == "hi there"
    assert server.hits[key] == 2


def test_a_429_is_retried(server):
    llm, key = client(server, "busy429")
    assert llm.complete(MESSAGES).text == "hi there"
    assert server.hits[key] == 2


def test_a_5xx_that_persists_gives_up_after_the_retries(server):
    llm, key = client(server, "always503", max_retries=2)
    with pytest.raises(LLMResponseError, match="HTTP 503") as caught:
        llm.complete(MESSAGES)
    assert caught.value.status_code == 503
    assert server.hits[key] == 3


def test_a_400_is_not_retried(server):
    llm, key = client(server, "bad400")
    with pytest.raises(LLMResponseError, match="HTTP 400.*max_tokens too large") as caught:
        llm.complete(MESSAGES)
    assert caught.value.status_code == 400
    assert server.hits[key] == 1


@pytest.mark.parametrize("behaviour", ["garbage", "nochoices"])
def test_a_malformed_body_is_a_typed_error(server, behaviour):
    llm, key = client(server, behaviour)
    with pytest.raises(LLMResponseError, match="not a chat completion"):
        llm.complete(MESSAGES)
    assert server.hits[key] == 1


def test_a_stalled_server_times_out_without_retrying(server):
    llm, key = client(server, "stall", timeout_s=0.5)
    started = time.perf_counter()
    with pytest.raises(LLMTimeoutError, match="no answer within 0.5 s"):
        llm.complete(MESSAGES)
    assert time.perf_counter() - started < 0.5 + 1.0
    assert server.hits[key] == 1


def test_a_dropped_connection_is_a_connection_error_after_retries(server):
    llm, key = client(server, "hangup", max_retries=1)
    with pytest.raises(LLMConnectionError, match="cannot talk to"):
        llm.complete(MESSAGES)
    assert server.hits[key] == 2


def test_nothing_listening_is_a_connection_error():
    llm = OpenAILLM(base_url=f"http://127.0.0.1:{free_port()}/v1", model="m", backoff_s=0.01, max_retries=1)
    started = time.perf_counter()
    with pytest.raises(LLMConnectionError, match="check that the server is running"):
        llm.complete(MESSAGES)
    assert time.perf_counter() - started < 2.0


KILLABLE_SERVER = """
import socket, sys
listener = socket.socket()
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", int(sys.argv[1])))
listener.listen()
print("listening", flush=True)
connection, _ = listener.accept()
connection.recv(65536)
print("got request", flush=True)
sys.stdin.read()  # hold the request open until killed
"""


def test_a_server_killed_mid_request_is_a_connection_error():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-c", KILLABLE_SERVER, str(port)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "listening"
        llm = OpenAILLM(base_url=f"http://127.0.0.1:{port}/v1", model="m", timeout_s=10, backoff_s=0.05, max_retries=2)
        outcome = {}

        def call():
            try:
                llm.complete(MESSAGES)
            except Exception as error:  # recorded for the assertion below
                outcome["error"] = error

        caller = threading.Thread(target=call)
        started = time.perf_counter()
        caller.start()
        assert process.stdout.readline().strip() == "got request"
        process.kill()
        caller.join(timeout=5)
        assert not caller.is_alive(), "the call hung after the server died"
        assert isinstance(outcome.get("error"), LLMConnectionError), outcome
        assert time.perf_counter() - started < 5
    finally:
        process.kill()
        process.wait()


def test_async_calls_retry_and_time_out_the_same_way(server):
    retrying, retry_key = client(server, "fail500")
    stalling, _ = client(server, "stall", timeout_s=0.5)

    async def scenario():
        assert (await retrying.acomplete(MESSAGES)).text == "hi there"
        started = time.perf_counter()
        with pytest.raises(LLMTimeoutError):
            await stalling.acomplete(MESSAGES)
        return time.perf_counter() - started

    assert asyncio.run(scenario()) < 1.5
    assert server.hits[retry_key] == 2


def test_acomplete_many_keeps_requests_in_flight_up_to_the_limit(server):
    llm, key = client(server, "slow")
    batch = [[{"role": "user", "content": f"q{i}"}] for i in range(8)]
    server.peak_in_flight = 0
    started = time.perf_counter()
    results = asyncio.run(llm.acomplete_many(batch, concurrency=4))
    elapsed = time.perf_counter() - started
    assert [r.text for r in results] == [f"q{i}" for i in range(8)]
    assert server.peak_in_flight == 4
    assert elapsed < 8 * 0.3 / 2  # two waves of 0.3 s, far from eight


def test_complete_many_keeps_requests_in_flight_too(server):
    llm, key = client(server, "slow")
    server.peak_in_flight = 0
    results = llm.complete_many([[{"role": "user", "content": f"q{i}"}] for i in range(4)], concurrency=4)
    assert [r.text for r in results] == [f"q{i}" for i in range(4)]
    assert server.peak_in_flight == 4


def mixed_batch():
    """Eight requests: one the server refuses (HTTP 400), one it stalls past the timeout, six it answers."""
    contents = [f"q{i}" for i in range(8)]
    contents[2], contents[5] = "refuse q2", "stall q5"
    return [[{"role": "user", "content": content}] for content in contents]


def assert_each_request_kept_its_outcome(results, server, key):
    assert len(results) == 8 and server.hits[key] == 8  # every request was sent, none dropped
    assert [r.text for i, r in enumerate(results) if i not in (2, 5)] == [f"q{i}" for i in (0, 1, 3, 4, 6, 7)]
    assert isinstance(results[2], LLMResponseError) and results[2].status_code == 400
    assert isinstance(results[5], LLMTimeoutError)


def test_complete_many_returns_each_success_and_each_failure_in_its_place(server):
    llm, key = client(server, "bymessage", timeout_s=0.5)
    results = llm.complete_many(mixed_batch(), concurrency=8)
    assert_each_request_kept_its_outcome(results, server, key)
    assert llm.usage_total.total_tokens == 6 * 9  # the six completions are counted


def test_acomplete_many_returns_each_success_and_each_failure_in_its_place(server):
    llm, key = client(server, "bymessage", timeout_s=0.5)
    results = asyncio.run(llm.acomplete_many(mixed_batch(), concurrency=3))
    assert_each_request_kept_its_outcome(results, server, key)
    assert llm.usage_total.total_tokens == 6 * 9


def test_a_strict_batch_raises_the_first_failure_after_every_request_ran(server):
    llm, key = client(server, "bymessage", timeout_s=0.5)
    with pytest.raises(LLMResponseError, match="HTTP 400") as caught:
        llm.complete_many(mixed_batch(), concurrency=8, strict=True)
    assert "request 2 of a batch of 8 failed (2 failed in all)" in caught.value.__notes__[0]
    assert server.hits[key] == 8 and llm.usage_total.total_tokens == 6 * 9
    async_llm, async_key = client(server, "bymessage", timeout_s=0.5)
    with pytest.raises(LLMResponseError, match="HTTP 400"):
        asyncio.run(async_llm.acomplete_many(mixed_batch(), concurrency=8, strict=True))
    assert server.hits[async_key] == 8
