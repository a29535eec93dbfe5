"""Make a tiny LoRA adapter (random weights, rank 8) on a Hugging Face model folder, for tests.

    python -m memento.evals.vllm.make_tiny_lora --base HF_FOLDER --out ADAPTER_FOLDER

Its weights are random, not trained: it exists so tests can check that an adapter named in a
request is really applied (the answer changes) by vLLM and by the transformers backend.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def make_tiny_lora(base_folder: str | Path, out_dir: str | Path, *, rank: int = 8, seed: int = 0) -> Path:
    """Save a rank-`rank` LoRA on q_proj and v_proj with random (non-zero) weights; return its folder."""
    import peft
    import torch
    import transformers

    out_dir = Path(out_dir)
    settings = {"r": rank, "lora_alpha": 4 * rank, "target_modules": ["q_proj", "v_proj"]}
    saved = out_dir / "adapter_config.json"
    if saved.is_file():
        existing = json.loads(saved.read_text())
        if (existing.get("r"), existing.get("lora_alpha")) == (settings["r"], settings["lora_alpha"]):
            return out_dir
    torch.manual_seed(seed)
    model = transformers.AutoModelForCausalLM.from_pretrained(str(base_folder), dtype=torch.float32)
    # init_lora_weights=False draws B at random too (peft's default zeroes it, which changes nothing);
    # alpha = 4 x rank scales the update enough to change SmolLM2's greedy answers while they stay words.
    config = peft.LoraConfig(**settings, init_lora_weights=False, task_type="CAUSAL_LM")
    peft.get_peft_model(model, config).save_pretrained(str(out_dir))
    return out_dir


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="Hugging Face model folder the adapter is for")
    parser.add_argument("--out", required=True, help="folder to write the adapter to")
    parser.add_argument("--rank", type=int, default=8)
    args = parser.parse_args()
    print(make_tiny_lora(args.base, args.out, rank=args.rank))


if __name__ == "__main__":
    main()
