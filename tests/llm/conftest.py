"""Fixtures for the LLM backends: the real SmolLM2 in-process, and real servers on 127.0.0.1."""

import json
import os

import pytest

from memento.llm.local_server import free_port, llama_server_command, serve


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "vllm: needs vLLM (a `vllm serve` at MEMENTO_VLLM_URL, or vllm importable); run by make test-vllm"
    )


@pytest.fixture(scope="session")
def smollm2():
    """The embedded default backend, loaded once for the session."""
    from memento.llm.llamacpp import LlamaCppLLM

    return LlamaCppLLM()


@pytest.fixture(scope="session")
def llama_server_url():
    """llama-cpp-python's own OpenAI-compatible server with the SmolLM2 GGUF, stopped after the session."""
    pytest.importorskip("llama_cpp.server", reason="needs llama-cpp-python[server]")
    with serve(llama_server_command(free_port())) as base_url:
        yield base_url


@pytest.fixture(scope="session")
def distilled():
    """The promoted adapter make_distilled_adapter made for `make test-vllm` (MEMENTO_DISTILLED names its JSON)."""
    path = os.environ.get("MEMENTO_DISTILLED")
    if not path:
        pytest.skip("needs a distilled adapter: set MEMENTO_DISTILLED to the JSON that "
                    "`python -m memento.evals.vllm.make_distilled_adapter` prints, or run `make test-vllm`")
    with open(path, encoding="utf-8") as stream:
        return json.load(stream)


@pytest.fixture(scope="session")
def vllm_server_url():
    """A running `vllm serve` (started by evals/vllm/setup_and_test.sh), else skip."""
    url = os.environ.get("MEMENTO_VLLM_URL")
    if not url:
        pytest.skip("needs a running `vllm serve`: set MEMENTO_VLLM_URL, or run `make test-vllm`")
    return url
