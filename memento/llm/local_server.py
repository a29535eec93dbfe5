"""Start an OpenAI-compatible server on 127.0.0.1 for a while: for tests, benchmarks and local runs.

    with serve(llama_server_command(port=free_port())) as base_url:
        llm = load_llm("openai", base_url=base_url, extra_body={"repeat_penalty": 1.0})

The server is stopped (terminated, then killed) when the block ends, whatever happens inside it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterator

import httpx

from memento.errors import LLMConnectionError
from memento.llm.llamacpp import smollm2_gguf_path

HOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def llama_server_command(port: int, model_path: str | Path | None = None, *, n_threads: int = 2) -> list[str]:
    """The command line of llama-cpp-python's own OpenAI-compatible server for a GGUF file."""
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model_path or smollm2_gguf_path()),
        "--host", HOST, "--port", str(port),
        "--n_threads", str(n_threads), "--n_ctx", "4096",
    ]


@contextlib.contextmanager
def serve(command: list[str], *, ready_timeout_s: float = 120.0) -> Iterator[str]:
    """Run `command` (which takes `--port N`), wait until GET /v1/models answers, yield the /v1 URL."""
    port = command[command.index("--port") + 1]
    base_url = f"http://{HOST}:{port}/v1"
    with tempfile.TemporaryFile() as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "NO_PROXY": HOST})
        try:
            _wait_ready(process, base_url, ready_timeout_s, log)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _wait_ready(process: subprocess.Popen, base_url: str, timeout_s: float, log) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise LLMConnectionError(f"server {process.args[:4]} exited with {process.returncode}: {_tail(log)}")
        try:
            if httpx.get(f"{base_url}/models", timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise LLMConnectionError(f"server {process.args[:4]} not ready within {timeout_s} s: {_tail(log)}")


def _tail(log, size: int = 2000) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-size:]
