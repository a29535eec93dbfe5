"""A peft LoRA folder turned into the GGUF adapter file llama.cpp loads (`Llama(lora_path=...)`).

    gguf_path = peft_to_gguf("cases.db.adapters/v0003/adapter", base_gguf, "v0003.gguf")

llama.cpp's own converter (`convert_lora_to_gguf.py`) ships with llama.cpp's sources, not with
llama-cpp-python, and needs the base model's Hugging Face folder; this one reads only the adapter
and the GGUF that llama.cpp will run it on, with the `gguf` package of the extra `memento[distill]`.

What llama.cpp expects (src/llama-adapter.cpp): `general.type = "adapter"`, `adapter.type = "lora"`,
`adapter.lora.alpha`, the base model's architecture, and for each adapted weight `<gguf name>.lora_a`
(shape r x in, as peft stores A) and `.lora_b` (out x r). The scale is alpha / r, as in peft.
One subtlety: the Llama GGUF converter permutes the rows of q_proj and k_proj (its rotary embedding
pairs dimensions differently from Hugging Face's), so B of those two must be permuted the same way,
or the adapter changes the wrong dimensions. Only the `llama` architecture (SmolLM2's) is handled;
others are refused with the converter to use instead.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from memento.errors import ValidationError, missing_extra

SUPPORTED_ARCHITECTURES = ("llama",)
PEFT_KEY = re.compile(r"^base_model\.model\.(?P<module>.+)\.lora_(?P<side>[AB])\.weight$")
PERMUTED = {"q_proj": "head_count", "k_proj": "head_count_kv"}
"""Projections whose rows llama.cpp's Llama converter permutes, and the head count it permutes by."""


def peft_to_gguf(adapter_dir: str | Path, base_gguf: str | Path, out_path: str | Path) -> Path:
    """Write the adapter in `adapter_dir` (peft format) as a llama.cpp LoRA GGUF for `base_gguf`; return its path.

    Every adapted weight is checked against the base file's tensor of that name and shape, so an
    adapter for another model is refused here with the mismatch named, not later by llama.cpp.
    The file is written beside `out_path` and renamed into place: a crash leaves no half file.
    """
    gguf, numpy, safetensors = _import_libraries()
    adapter_dir, out_path = Path(adapter_dir), Path(out_path)
    settings = _adapter_settings(adapter_dir)
    base = _base_model(gguf, Path(base_gguf))
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, base["block_count"])
    pairs = _lora_pairs(safetensors, adapter_dir / "adapter_model.safetensors")
    partial = out_path.with_name(f".{out_path.name}.partial-{os.getpid()}")
    writer = gguf.GGUFWriter(str(partial), base["architecture"])
    try:
        writer.add_string("general.type", "adapter")
        writer.add_string("adapter.type", "lora")
        writer.add_float32("adapter.lora.alpha", float(settings["lora_alpha"]))
        for module, (a, b) in sorted(pairs.items()):
            name = names.get_name(module + ".weight", try_suffixes=(".weight",))
            if name is None:
                raise ValidationError(f"adapted module {module!r} has no llama.cpp tensor name; "
                                      f"target only attention and MLP projections (q/k/v/o_proj, gate/up/down_proj)")
            _check_shape(name, a, b, base["tensors"], base_gguf)
            projection = module.rsplit(".", 1)[-1]
            if projection in PERMUTED:
                b = _permute_rows(b, base[PERMUTED[projection]])
            writer.add_tensor(name + ".lora_a", numpy.ascontiguousarray(a, dtype=numpy.float32))
            writer.add_tensor(name + ".lora_b", numpy.ascontiguousarray(b, dtype=numpy.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        os.replace(partial, out_path)
    finally:
        partial.unlink(missing_ok=True)
    return out_path


def _adapter_settings(adapter_dir: Path) -> dict[str, Any]:
    config_path = adapter_dir / "adapter_config.json"
    if not config_path.is_file() or not (adapter_dir / "adapter_model.safetensors").is_file():
        raise ValidationError(f"{str(adapter_dir)!r} is not a peft LoRA folder (it needs adapter_config.json and "
                              f"adapter_model.safetensors); pass the folder `save_pretrained` wrote")
    settings = json.loads(config_path.read_text(encoding="utf-8"))
    unsupported = [key for key in ("use_dora", "use_rslora") if settings.get(key)]
    if settings.get("peft_type", "LORA") != "LORA" or unsupported or settings.get("modules_to_save"):
        raise ValidationError(f"adapter {str(adapter_dir)!r} uses {unsupported or settings.get('peft_type')}"
                              f"{' and modules_to_save' if settings.get('modules_to_save') else ''}, which llama.cpp's "
                              f"LoRA format cannot hold; train a plain LoRA (no DoRA, rsLoRA or saved modules)")
    if settings.get("rank_pattern") or settings.get("alpha_pattern"):
        raise ValidationError(f"adapter {str(adapter_dir)!r} has per-module ranks or alphas; llama.cpp's format "
                              f"has one alpha for the whole adapter: train with one r and one lora_alpha")
    return settings


def _base_model(gguf: Any, path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise ValidationError(f"base GGUF {str(path)!r} does not exist; pass the model file llama.cpp runs")
    reader = gguf.GGUFReader(str(path))

    def value(key: str) -> Any:
        field = reader.fields.get(key)
        if field is None:
            raise ValidationError(f"base GGUF {str(path)!r} has no {key!r}; is it a model file, not an adapter?")
        return field.contents()

    architecture = value("general.architecture")
    if architecture not in SUPPORTED_ARCHITECTURES:
        raise ValidationError(f"base model architecture {architecture!r} is not converted here (only "
                              f"{', '.join(SUPPORTED_ARCHITECTURES)}); use llama.cpp's convert_lora_to_gguf.py")
    return {
        "architecture": architecture,
        "block_count": int(value(f"{architecture}.block_count")),
        "head_count": int(value(f"{architecture}.attention.head_count")),
        "head_count_kv": int(value(f"{architecture}.attention.head_count_kv")),
        # GGUF lists dimensions innermost first (ne[0] = input features), the reverse of numpy's order.
        "tensors": {t.name: tuple(int(n) for n in t.shape) for t in reader.tensors},
    }


def _lora_pairs(safetensors: Any, weights_path: Path) -> dict[str, tuple[Any, Any]]:
    """module name (e.g. 'model.layers.0.self_attn.q_proj') -> (A, B) as numpy arrays."""
    sides: dict[str, dict[str, Any]] = {}
    with safetensors.safe_open(str(weights_path), framework="numpy") as weights:
        for key in weights.keys():
            match = PEFT_KEY.match(key)
            if match is None:
                raise ValidationError(f"tensor {key!r} in {str(weights_path)!r} is not a LoRA A or B weight; "
                                      f"llama.cpp's format holds only those: train without extra saved modules")
            sides.setdefault(match["module"], {})[match["side"]] = weights.get_tensor(key)
    incomplete = sorted(m for m, pair in sides.items() if set(pair) != {"A", "B"})
    if incomplete or not sides:
        raise ValidationError(f"{str(weights_path)!r} holds no complete A/B pair for {incomplete or 'any module'}; "
                              f"save the adapter again with save_pretrained")
    return {module: (pair["A"], pair["B"]) for module, pair in sides.items()}


def _check_shape(name: str, a: Any, b: Any, tensors: dict[str, tuple[int, ...]], base_gguf: str | Path) -> None:
    shape = tensors.get(name)
    if shape is None:
        raise ValidationError(f"the base GGUF {str(base_gguf)!r} has no tensor {name!r}; "
                              f"the adapter was trained for another model")
    in_features, out_features = shape[0], shape[1]
    if a.shape[1] != in_features or b.shape[0] != out_features or a.shape[0] != b.shape[1]:
        raise ValidationError(f"LoRA for {name!r} has A {tuple(a.shape)} and B {tuple(b.shape)}, but the base weight "
                              f"is {out_features} x {in_features}: the adapter was trained for another model")


def _permute_rows(weights: Any, heads: int) -> Any:
    """The row order llama.cpp's Llama converter gives q_proj (heads: head_count) and k_proj (head_count_kv)."""
    rows = weights.shape[0]
    return weights.reshape(heads, 2, rows // heads // 2, *weights.shape[1:]).swapaxes(1, 2).reshape(weights.shape)


def _import_libraries() -> tuple[Any, Any, Any]:
    try:
        import gguf
        import numpy
        import safetensors
    except ImportError as error:
        raise missing_extra(error.name or "gguf", "distill") from error
    return gguf, numpy, safetensors
