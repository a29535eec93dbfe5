"""`load_llm`: build a backend by name, importing its module (and optional extra) only then."""

from __future__ import annotations

import importlib
from typing import Any

from memento.errors import ValidationError
from memento.llm.base import LLM

BACKENDS: dict[str, str] = {
    "llamacpp": "memento.llm.llamacpp:LlamaCppLLM",
    "openai": "memento.llm.openai_backend:OpenAILLM",
    "vllm": "memento.llm.vllm_backend:VLLMLLM",
    "transformers": "memento.llm.transformers_backend:TransformersLLM",
    "balanced": "memento.llm.balancer:BalancedLLM",
}
"""Backend name -> 'module:class'."""


def load_llm(backend: str = "llamacpp", **kwargs: Any) -> LLM:
    """Build the named backend; keyword arguments go to its config (see each backend's *Config)."""
    if backend not in BACKENDS:
        raise ValidationError(f"unknown LLM backend {backend!r}; choose one of {sorted(BACKENDS)}")
    module_name, class_name = BACKENDS[backend].split(":")
    return getattr(importlib.import_module(module_name), class_name)(**kwargs)
