"""BalancedLLM against real HTTP servers on 127.0.0.1: round-robin, least-busy, failover.

Each server is a small threading http.server answering chat completions with its own name after
a delay it is given, so a test can see which server took which call and make one of them slow.
"""

import asyncio
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from memento.errors import LLMConnectionError, ValidationError
from memento.llm import load_llm
from memento.llm.balancer import BalancedLLM
from memento.llm.local_server import free_port

MESSAGES = [{"role": "user", "content": "hello"}]


class NamedServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, name: str, delay_s: float = 0.0):
        super().__init__(("127.0.0.1", 0), Handler)
        self.name, self.delay_s, self.hits = name, delay_s, 0
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def stop(self) -> None:
        self.shutdown()
        self.server_close()


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        self.server.hits += 1
        time.sleep(self.server.delay_s)
        body = json.dumps({
            "id": "x", "object": "chat.completion", "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.server.name},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def servers():
    started = []

    def start(name, delay_s=0.0):
        server = NamedServer(name, delay_s)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def balanced(urls, **options):
    return load_llm("balanced", base_urls=urls, model="m", max_retries=0, connect_timeout_s=1.0, **options)


def test_round_robin_takes_the_servers_in_turn(servers):
    a, b = servers("a"), servers("b")
    llm = balanced([a.url, b.url], strategy="round_robin")
    answers = [llm.complete(MESSAGES).text for _ in range(6)]
    assert answers == ["a", "b"] * 3
    assert llm.calls == [3, 3] and llm.usage_total.total_tokens == 24


def test_least_busy_sends_most_calls_to_the_server_that_answers_first(servers):
    slow, fast = servers("slow", delay_s=0.8), servers("fast", delay_s=0.02)
    llm = balanced([slow.url, fast.url])

    async def many():
        gate = asyncio.Semaphore(2)

        async def one():
            async with gate:
                return (await llm.acomplete(MESSAGES)).text

        return await asyncio.gather(*(one() for _ in range(20)))

    answers = asyncio.run(many())
    assert len(answers) == 20
    # With two in flight, the slow server holds one call for 0.8 s while the fast one answers ~40.
    assert answers.count("fast") >= 16, answers
    assert llm.in_flight == [0, 0]


def test_a_refused_connection_fails_over_to_the_next_server(servers):
    up = servers("up")
    llm = balanced([f"http://127.0.0.1:{free_port()}/v1", up.url], strategy="round_robin", cooldown_s=30)
    answers = [llm.complete(MESSAGES).text for _ in range(4)]
    assert answers == ["up"] * 4
    assert llm.calls == [0, 4]


def test_a_server_stopped_mid_run_costs_no_call(servers):
    a, b = servers("a"), servers("b")
    llm = balanced([a.url, b.url], strategy="round_robin")
    first = [llm.complete(MESSAGES).text for _ in range(2)]
    a.stop()
    rest = [llm.complete(MESSAGES).text for _ in range(4)]
    assert first == ["a", "b"] and rest == ["b"] * 4


def test_when_every_server_is_down_the_call_raises_the_connection_error():
    llm = balanced([f"http://127.0.0.1:{free_port()}/v1", f"http://127.0.0.1:{free_port()}/v1"])
    with pytest.raises(LLMConnectionError):
        llm.complete(MESSAGES)


@pytest.mark.parametrize("options, words", [
    ({"base_urls": []}, "base_urls"),
    ({"base_urls": ["http://127.0.0.1:1/v1"], "strategy": "random"}, "least_busy"),
])
def test_bad_settings_name_the_rule(options, words):
    with pytest.raises(ValidationError, match=words):
        BalancedLLM(**options)


def test_a_comma_separated_string_of_urls_is_accepted(servers):
    a, b = servers("a"), servers("b")
    llm = balanced(f"{a.url},{b.url}", strategy="round_robin")
    assert len(llm.backends) == 2 and [llm.complete(MESSAGES).text for _ in range(2)] == ["a", "b"]
