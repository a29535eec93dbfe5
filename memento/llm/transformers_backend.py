"""SmolLM2 through transformers (+ peft) on the CPU: the backend that runs and trains LoRA adapters.

Needs the extra `memento[distill]` (transformers, peft, gguf). The model comes from the packaged
GGUF, dequantized once into a plain Hugging Face folder (`dequantize_gguf`), which vLLM can load
too. `save_pretrained` refuses a model loaded from GGUF, so a plain model is built from the config
and given the dequantized weights. There is no constrained decoding here: `structured` puts the
schema in the prompt and relies on validation and the repair try.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memento.errors import ValidationError, missing_extra
from memento.llm.base import LLM, Completion, Request, Usage, configured
from memento.llm.llamacpp import smollm2_gguf_path

DEFAULT_CACHE_DIR = Path.home() / ".cache" / "memento" / "hf"


def dequantize_gguf(gguf_path: str | Path | None = None, out_dir: str | Path | None = None) -> Path:
    """Write the GGUF model as a plain Hugging Face folder (float32 safetensors + tokenizer); return it.

    The default `out_dir` is under ~/.cache/memento/hf/, named by the file's content hash, so the
    work (tens of seconds) is done once per GGUF file; an existing folder is returned as it is.
    """
    gguf_path = Path(gguf_path) if gguf_path else smollm2_gguf_path()
    out_dir = Path(out_dir) if out_dir else DEFAULT_CACHE_DIR / f"{gguf_path.stem}-{_file_digest(gguf_path)}"
    if (out_dir / "config.json").is_file() and any(out_dir.glob("*.safetensors")):
        return out_dir
    torch, transformers = _import_distill()
    # Written beside the target and renamed at the end, so a crash never leaves a half folder.
    partial = out_dir.with_name(f"{out_dir.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    source = {"pretrained_model_name_or_path": str(gguf_path.parent), "gguf_file": gguf_path.name}
    quantized = transformers.AutoModelForCausalLM.from_pretrained(**source, dtype=torch.float32)
    # Without its quantization_config the folder reads as a plain float32 model (vLLM would look for GGUF).
    settings = {k: v for k, v in quantized.config.to_dict().items() if k not in ("quantization_config", "_name_or_path")}
    plain_config = type(quantized.config).from_dict(settings)
    plain = transformers.AutoModelForCausalLM.from_config(plain_config, dtype=torch.float32)
    plain.load_state_dict(quantized.state_dict())
    plain.generation_config = quantized.generation_config
    plain.save_pretrained(partial)
    transformers.AutoTokenizer.from_pretrained(**source).save_pretrained(partial)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    try:
        partial.rename(out_dir)
    except OSError:  # another process finished first; its folder is as good as ours
        shutil.rmtree(partial, ignore_errors=True)
    return out_dir


@dataclass
class TransformersConfig:
    """Which Hugging Face folder to load, with which LoRA adapters, and how to sample."""

    model: str | None = None
    """Hugging Face model folder; None means SmolLM2 dequantized from the packaged GGUF."""
    lora_adapters: dict[str, str] = field(default_factory=dict)
    """LoRA adapter name -> peft folder; a call picks one with lora=NAME, or the base model with None."""
    temperature: float = 0.0
    """Default temperature; 0 is greedy."""
    max_tokens: int = 256
    """Default cap on completion tokens."""
    seed: int = 0
    """Sampling seed, set before each sampled call so runs repeat."""
    n_threads: int | None = None
    """torch CPU threads; None leaves torch's setting."""
    distilled_from: str | None = None
    """A bank file: calls that name no adapter use the adapter promoted for it (`memento distill promote`),
    re-read before each call so a new promotion or a rollback is picked up; None uses the base model."""


class TransformersLLM(LLM):
    """A causal LM run by transformers on the CPU, with peft LoRA adapters switchable per call.

    `hf_model` (a peft model when adapters are loaded) and `tokenizer` are public, for training.
    """

    backend = "transformers"
    constrains_json = False

    def __init__(self, config: TransformersConfig | None = None, **overrides: Any):
        config = configured(config, TransformersConfig, overrides)
        super().__init__(temperature=config.temperature, max_tokens=config.max_tokens)
        torch, transformers = _import_distill()
        if config.n_threads:
            torch.set_num_threads(config.n_threads)
        folder = config.model or str(dequantize_gguf())
        self.config = config
        self.model = folder
        self._torch = torch
        self._lock = threading.Lock()  # generate() on one model object is not meant for threads
        self.tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        self.hf_model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
        if config.lora_adapters:
            self.hf_model = _with_adapters(self.hf_model, config.lora_adapters)
        self._adapters = dict(config.lora_adapters)
        self.distilled: str | None = None
        """The promoted distilled adapter's version in use now (with `distilled_from`), or None."""

    @classmethod
    def from_loaded(cls, hf_model: Any, tokenizer: Any, *, name: str = "loaded", **overrides: Any) -> TransformersLLM:
        """An LLM over a model already in memory (e.g. the peft model a distillation is gating): nothing is loaded.

        Calls run the model as it is: which adapter is active (or disabled) is the owner's choice.
        """
        config = configured(None, TransformersConfig, overrides)
        if config.lora_adapters or config.distilled_from:
            raise ValidationError("from_loaded runs the model as given; set its adapters on the model, "
                                  "not with lora_adapters or distilled_from")
        llm = cls.__new__(cls)
        LLM.__init__(llm, temperature=config.temperature, max_tokens=config.max_tokens)
        llm.config, llm.model, llm._torch = config, name, _import_distill()[0]
        llm._lock, llm.tokenizer, llm.hf_model = threading.Lock(), tokenizer, hf_model
        llm._adapters, llm.distilled = {}, None
        return llm

    def _follow_promotion(self) -> str | None:
        """Load the adapter now promoted for `distilled_from` (once per version); its name, or None."""
        from memento.distill.registry import AdapterRegistry

        promoted = AdapterRegistry(self.config.distilled_from).promoted()
        if promoted is not None and promoted.name not in self._adapters:
            if self._adapters:
                self.hf_model.load_adapter(str(promoted.adapter_dir), adapter_name=promoted.name)
            else:
                self.hf_model = _with_adapters(self.hf_model, {promoted.name: str(promoted.adapter_dir)})
            self._adapters[promoted.name] = str(promoted.adapter_dir)
        self.distilled = promoted.name if promoted else None
        return self.distilled

    def _complete(self, request: Request) -> Completion:
        inputs = self.tokenizer.apply_chat_template(
            request.messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        )
        sample = request.temperature > 0
        with self._lock:
            lora = request.lora or (self._follow_promotion() if self.config.distilled_from else None)
        with self._lock, self._adapter(lora), self._torch.inference_mode():
            if sample:
                self._torch.manual_seed(self.config.seed)
            output = self.hf_model.generate(
                **inputs,
                max_new_tokens=request.max_tokens,
                do_sample=sample,
                temperature=request.temperature if sample else None,
                top_p=None,
                top_k=None,
                stop_strings=request.stop,
                tokenizer=self.tokenizer,
                pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
            )
        prompt_length = inputs["input_ids"].shape[1]
        new_tokens = output[0, prompt_length:]
        text, finish_reason = self._cut(self.tokenizer.decode(new_tokens, skip_special_tokens=True), request)
        if finish_reason is None:
            ended = len(new_tokens) and int(new_tokens[-1]) == self.tokenizer.eos_token_id
            finish_reason = "stop" if ended or len(new_tokens) < request.max_tokens else "length"
        return Completion(
            text=text,
            usage=Usage(prompt_tokens=prompt_length, completion_tokens=len(new_tokens)),
            model=lora or self.model,
            finish_reason=finish_reason,
        )

    def _adapter(self, name: str | None) -> contextlib.AbstractContextManager:
        adapters = self._adapters
        if name is not None and name not in adapters:
            raise ValidationError(
                f"LoRA adapter {name!r} is not loaded; this model has {sorted(adapters)}; "
                "pass lora_adapters={NAME: FOLDER} when loading the transformers backend"
            )
        if not adapters:
            return contextlib.nullcontext()
        if name is None:
            return self.hf_model.disable_adapter()
        self.hf_model.set_adapter(name)
        return contextlib.nullcontext()

    @staticmethod
    def _cut(text: str, request: Request) -> tuple[str, str | None]:
        """Drop a stop string and what follows (generate keeps the stop string itself)."""
        for stop in request.stop or []:
            if stop in text:
                return text[: text.index(stop)], "stop"
        return text, None


def _with_adapters(model: Any, adapters: dict[str, str]) -> Any:
    try:
        import peft
    except ImportError as error:
        raise missing_extra("peft", "distill") from error
    (first_name, first_path), *rest = adapters.items()
    model = peft.PeftModel.from_pretrained(model, first_path, adapter_name=first_name)
    for name, path in rest:
        model.load_adapter(path, adapter_name=name)
    return model.eval()


def _import_distill() -> tuple[Any, Any]:
    try:
        import gguf  # noqa: F401  transformers needs it to read GGUF files
        import torch
        import transformers
    except ImportError as error:
        raise missing_extra(error.name or "transformers", "distill") from error
    return torch, transformers


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:12]
