"""The base model and tokenizer that distillation trains on, and examples turned into token batches.

The base is SmolLM2-135M-Instruct, dequantized from the packaged GGUF (see
`memento.llm.transformers_backend.dequantize_gguf`), or any Hugging Face folder. The device is
chosen once: "auto" is CUDA when torch sees a GPU, else the CPU, so the same code trains on both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memento.distill.selection import Example
from memento.errors import MissingExtraError, missing_extra

IGNORE = -100
"""Label of a token the loss skips (the prompt, the padding): PyTorch cross-entropy's ignore_index."""


def import_training() -> tuple[Any, Any, Any]:
    """torch, transformers and peft, or the MissingExtraError that names `memento[distill]`."""
    try:
        import gguf  # noqa: F401  transformers needs it to read the packaged GGUF
        import peft
        import torch
        import transformers
    except ImportError as error:
        raise missing_extra(error.name or "peft", "distill") from error
    return torch, transformers, peft


def resolve_device(device: str) -> str:
    """'auto' is 'cuda' when torch sees a GPU, else 'cpu'; anything else is returned as it is."""
    torch, _, _ = import_training()
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise MissingExtraError(f"device {device!r} asked for, but torch sees no GPU; use device='auto' or 'cpu'")
    return device


def base_model_folder(model: str | None = None) -> Path:
    """The Hugging Face folder of the base model: `model`, or SmolLM2 dequantized from the packaged GGUF."""
    if model:
        return Path(model)
    from memento.llm.transformers_backend import dequantize_gguf

    return dequantize_gguf()


def load_base(model: str | None = None, device: str = "auto") -> tuple[Any, Any]:
    """(model, tokenizer) of the base model in float32 on `device`, in eval mode."""
    torch, transformers, _ = import_training()
    folder = base_model_folder(model)
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    network = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    return network.to(resolve_device(device)).eval(), tokenizer


@dataclass
class Batch:
    """Padded token ids, attention mask and labels (IGNORE where no loss is taken), as tensors."""

    input_ids: Any
    attention_mask: Any
    labels: Any

    def to(self, device: str) -> Batch:
        return Batch(self.input_ids.to(device), self.attention_mask.to(device), self.labels.to(device))


def example_tokens(tokenizer: Any, example: Example, max_length: int) -> tuple[list[int], list[int]]:
    """(ids, labels) of a chat example: loss on the assistant's reply (with its end token) only."""
    messages = example.chat()
    prompt = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    full = tokenizer.apply_chat_template(messages + [{"role": "assistant", "content": example.completion}], tokenize=False)
    full = full.rstrip("\n")  # the template's newline after the end token teaches nothing
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    reply_ids = tokenizer(full[len(prompt):], add_special_tokens=False)["input_ids"]
    # Keep the reply whole: cut the prompt from the left (its start is the fixed system prompt).
    room = max(1, max_length - len(reply_ids))
    prompt_ids = prompt_ids[-room:]
    ids = (prompt_ids + reply_ids)[:max_length]
    labels = ([IGNORE] * len(prompt_ids) + reply_ids)[:max_length]
    return ids, labels


def text_tokens(tokenizer: Any, text: str, max_length: int) -> tuple[list[int], list[int]]:
    """(ids, labels) of plain text, every token a target: for replay and perplexity."""
    ids = tokenizer(text, add_special_tokens=False)["input_ids"][:max_length]
    return ids, list(ids)


def collate(rows: Sequence[tuple[list[int], list[int]]], pad_id: int) -> Batch:
    """Right-pad (ids, labels) rows into one Batch."""
    torch, _, _ = import_training()
    width = max(len(ids) for ids, _ in rows)
    input_ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    labels = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, (ids, target) in enumerate(rows):
        input_ids[i, :len(ids)] = torch.tensor(ids)
        attention[i, :len(ids)] = 1
        labels[i, :len(target)] = torch.tensor(target)
    return Batch(input_ids, attention, labels)


def pad_id(tokenizer: Any) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
