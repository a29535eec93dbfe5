"""Fixtures of the inspector's tests: a real eval run, a real bank beside it, a real server on 127.0.0.1.

The run is made once per session by the real eval runner and the real agent (LangGraph, the
neural policy, BM25 search over the fictional suite's corpus) on a scripted LLM backend and the
fake hashing embedder (tests/fakes.py): the tests are about the inspector, not the model. The
bank the inspector edits is a copy of that run's neural arm (its agent-written cases, traces and
policy) plus hand-made cases: a hostile one, near-duplicates, a failure in another namespace.
"""

from __future__ import annotations

import re
import shutil
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.fakes import FakeHashEmbedder

HOSTILE_TASK = "<script>alert(1)</script> Who wrote <b>this</b> & why?"
FAKE_EMBEDDER = "fake-hash"
"""The fake's name, registered in the CLI's embedder table for the bank these tests open."""

EXTRA_CASES = [
    {"id": "hostile-1", "task": HOSTILE_TASK, "answer": "<img src=x onerror=alert(2)>", "reward": 0.0,
     "namespace": ["acme", "support"], "metadata": {"dataset": "hostile", "note": "</pre><script>alert(3)</script>"}},
    {"id": "dup-keep", "task": "Who founded the Vellmora Shipping Company?", "answer": "Ada Vell", "reward": 1.0,
     "namespace": ["acme", "support"], "metadata": {"dataset": "hotpotqa"}},
    {"id": "dup-copy", "task": "Who founded the Vellmora Shipping Company?", "answer": "Ada V.", "reward": 0.0,
     "namespace": ["acme", "support"], "metadata": {"dataset": "hotpotqa"}},
    {"id": "acme-fail", "task": "Which river flows through Quarry Bay?", "answer": "Thames", "reward": 0.0,
     "namespace": ["acme", "support"], "metadata": {"dataset": "hotpotqa", "judge": "strict"},
     "plan": ["Look up Quarry Bay", "Find its river"]},
]


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """A finished eval run folder (arms none and neural, 2 passes over 3 fictional tasks)."""
    from memento.evals.config import EvalConfig, LLMSpec, TaskSpec
    from memento.evals.runner import run_eval
    from memento.llm import BACKENDS

    folder = tmp_path_factory.mktemp("runs") / "tiny"
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(BACKENDS, "cli-scripted", "tests.cli.scripted_llm:CliScriptedLLM")
        run_eval(EvalConfig(out_dir=folder, tasks=TaskSpec(source="fictional", limit=3, options={"n_entities": 40}),
                            arms=["none", "neural"], iterations=2, concurrency=1, llm=LLMSpec(backend="cli-scripted")),
                 progress=False, embedder=FakeHashEmbedder())
    return folder


@pytest.fixture
def ui_bank(tiny_run, tmp_path) -> Path:
    """A copy of the run's neural bank (with its policy) plus EXTRA_CASES; returns the bank's path."""
    from memento.bank import CaseBank

    target = tmp_path / "bank"
    target.mkdir()
    for name in ("bank.db", "policy.pt"):
        shutil.copy(tiny_run / "arms" / "neural" / name, target / name)
    with CaseBank(target / "bank.db", FakeHashEmbedder(), create=False) as bank:
        bank.add_many(EXTRA_CASES)
    return target / "bank.db"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A running inspector: its address, settings and an HTTP client that carries the token."""

    url: str
    config: object
    thread: threading.Thread
    uvicorn_server: object

    def client(self, **kwargs) -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.config.token}"} if self.config.token else {}
        return httpx.Client(base_url=self.url, headers={**headers, **kwargs.pop("headers", {})}, timeout=30, **kwargs)


@pytest.fixture
def start_server(monkeypatch):
    """Start the real app under uvicorn on a free loopback port, in a thread of this process; stopped after the test."""
    import uvicorn

    from memento.cli.banks import EMBEDDERS, open_bank
    from memento.ui import UIConfig, create_app

    monkeypatch.setitem(EMBEDDERS, FAKE_EMBEDDER, FakeHashEmbedder)
    started = []

    def start(bank: Path, **settings) -> Server:
        config = UIConfig(bank=str(bank), embedder=FAKE_EMBEDDER, port=free_port(), **settings).check()
        opened = open_bank(bank, FAKE_EMBEDDER)
        app = create_app(config, opened.__enter__())
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=config.port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 20
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the inspector did not start"
            time.sleep(0.02)
        started.append((server, thread, opened, app))
        return Server(config.url.rstrip("/"), config, thread, server)

    yield start
    for server, thread, opened, app in started:
        server.should_exit = True
        thread.join(10)
        app.state.context.inspector.close()
        opened.__exit__(None, None, None)


@pytest.fixture
def small_bank(tmp_path) -> Path:
    """A bank of EXTRA_CASES only (fake embedder), for the tests that need no eval run."""
    from memento.bank import CaseBank

    path = tmp_path / "small.db"
    with CaseBank(path, FakeHashEmbedder(), create=True) as bank:
        bank.add_many(EXTRA_CASES)
    return path


CSRF_INPUT = re.compile(r'name="csrf_token" value="([^"]+)"')


def csrf_of(html: str) -> str:
    """The CSRF token of the first form on a page."""
    found = CSRF_INPUT.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)
