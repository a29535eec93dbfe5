"""Distil a real run's bank, with and without each anti-forgetting option, and report before/after.

    python -m evals.distill_check                      # the main job's fictional-world bank
    python -m evals.distill_check --bank path/to/bank.db --steps 20 --out runs/distill_check.json

The bank is copied to a temporary folder first (the run's files are only read). Each variant
trains a fresh LoRA adapter on the same selected cases with the same seed: no anti-forgetting
option, general replay, replay + KL to the base, EMA interpolation (I-LoRA's slow learner), and
all three. For each it measures, against the base model on the same items: the held-out
distilled cases and a sample of the trained ones (gold-reply log-probability per token, greedy EM),
the general probe (perplexity of held-out general passages, accuracy on general questions, with
bootstrap 95% CIs), the gate's verdict, seconds per training step (and its ratio to the variant
without options, on this machine now) and the adapter's size. General text comes from the shared
Wikipedia corpus when it is there (replay and probe passages disjoint), else from the package.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evals.benchmarking import machine_info, save_and_print
from memento.bank import CaseBank
from memento.distill import GateRule, GeneralSet, SelectionConfig, TrainConfig, select_examples
from memento.distill.gate import run_gate
from memento.distill.model import load_base
from memento.distill.probe import adapter_off, probe
from memento.distill.run import save_adapter
from memento.distill.train import lora_model, train_adapter

ROOT = Path(__file__).resolve().parents[1]
MAIN_JOB_BANK = Path("runs/main_job/fictional-headline/arms/neural/bank.db")
"""The main job's bank (`make main-job` writes it), relative to the repository root."""
SHARED_CORPUS = Path(os.environ.get("MEMENTO_SHARED_DATA", ROOT.parent / "shared" / "data")) / "corpus" / "wiki_passages.jsonl.gz"

VARIANTS: dict[str, dict[str, float]] = {
    "none": {"replay_ratio": 0.0, "kl_weight": 0.0, "interpolation": 0.0},
    "replay": {"replay_ratio": 0.25, "kl_weight": 0.0, "interpolation": 0.0},
    "replay+kl": {"replay_ratio": 0.25, "kl_weight": 0.5, "interpolation": 0.0},
    "ema": {"replay_ratio": 0.0, "kl_weight": 0.0, "interpolation": 0.9},
    "replay+kl+ema": {"replay_ratio": 0.25, "kl_weight": 0.5, "interpolation": 0.9},
}
"""Anti-forgetting options of each variant; everything else is the same."""


def general_set(corpus: Path | None, n: int) -> GeneralSet:
    """Replay and probe passages: disjoint slices of the shared corpus when present, else the package's."""
    if corpus is None or not corpus.exists():
        return GeneralSet()
    with gzip.open(corpus, "rt", encoding="utf-8") as stream:
        passages = [json.loads(line)["text"] for _, line in zip(range(20 * n), stream)]
    # Every 10th passage of the first 20n: spread over topics, and a fixed choice.
    chosen = passages[::10]
    return GeneralSet(replay=tuple(chosen[:n]), probe_text=tuple(chosen[n:2 * n]), source=f"{corpus} (passages 0..{20 * n}, every 10th)")


def copy_bank(bank: Path, into: Path) -> Path:
    for suffix in ("", ".faiss"):
        source = bank.with_name(bank.name + suffix)
        if source.exists():
            shutil.copy2(source, into / source.name)
    return into / bank.name


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bank", type=Path, default=MAIN_JOB_BANK, help="a run's bank.db (copied, never written)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated, from " + ", ".join(VARIANTS))
    parser.add_argument("--general-passages", type=int, default=40, help="replay passages and probe passages each")
    parser.add_argument("--train-sample", type=int, default=16, help="trained cases probed for recall")
    parser.add_argument("--corpus", type=Path, default=SHARED_CORPUS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/distill_check/result.json"))
    args = parser.parse_args(argv)
    if not args.bank.exists():
        parser.error(f"bank {args.bank} does not exist; run `make main-job` first or give a run's bank.db with --bank")

    workdir = Path(tempfile.mkdtemp(prefix="memento-distill-check-"))
    bank = CaseBank(copy_bank(args.bank, workdir), create=False)
    data = select_examples(bank, SelectionConfig(seed=args.seed))
    general = general_set(args.corpus, args.general_passages)
    sample = data.train[:args.train_sample]
    base, tokenizer = load_base(device="auto")
    measured = {"heldout": data.heldout, "general_text": general.probe_text, "general_qa": general.probe_qa}
    started = time.perf_counter()
    base_scores = probe(base, tokenizer, **measured)
    base_train = probe(base, tokenizer, heldout=sample, prefix="train")
    base_probe_s = time.perf_counter() - started
    result: dict[str, Any] = {
        "created_at": datetime.now(timezone.utc).isoformat(),
        "machine": machine_info(),
        "config": {**vars(args), "bank": str(args.bank), "corpus": str(args.corpus), "out": str(args.out)},
        "data": {k: v for k, v in data.provenance.items() if not k.endswith("_case_ids")} | {
            "train": len(data.train), "heldout": len(data.heldout), "general_text": general.source},
        "base": {**{k: v.to_dict() for k, v in base_scores.items()}, **{k: v.to_dict() for k, v in base_train.items()},
                 "probe_seconds": base_probe_s},
        "variants": {},
    }
    for name in args.variants.split(","):
        config = TrainConfig(steps=args.steps, lr=args.lr, batch_size=args.batch_size, seed=args.seed, **VARIANTS[name])
        model = lora_model(load_base(device="auto")[0], config)
        trained = train_adapter(model, tokenizer, data.train, config, replay_texts=general.replay)
        gate = run_gate(model, tokenizer, rule=GateRule(), base_scores=base_scores, **measured)
        recall = probe(model, tokenizer, heldout=sample, prefix="train")
        size = sum(p.stat().st_size for p in save_adapter(model, workdir / f"adapter-{name}").iterdir())
        result["variants"][name] = {
            "options": VARIANTS[name], "seconds_per_step": trained.seconds_per_step,
            "final_losses": trained.losses[-1], "adapter_bytes": size, "gate_passed": gate["passed"],
            "gate_failed": gate["failed"], "gate_checks": [c["why"] for c in gate["checks"]],
            "scores": {**gate["scores"]["candidate"], **{k: v.to_dict() for k, v in recall.items()}},
        }
        print(f"{name}: gate {'passed' if gate['passed'] else 'failed ' + ', '.join(gate['failed'])}", flush=True)
    save_and_print(result, args.out, table(result))
    bank.close()
    return result


def table(result: dict[str, Any]) -> str:
    """The before/after table in Markdown."""
    def cell(scores: dict, key: str, digits: int = 2, ci: bool = False) -> str:
        score = scores[key]
        text = f"{score['mean']:.{digits}f}"
        return text + (f" [{score['ci95'][0]:.{digits}f}, {score['ci95'][1]:.{digits}f}]" if ci else "")

    base = result["base"]
    plain = result["variants"].get("none", {}).get("seconds_per_step")
    lines = ["| model | held-out logprob/token | held-out EM % | trained logprob/token | trained EM % | "
             "general ppl [95% CI] | general QA % [95% CI] | gate | s/step (ratio to none) | adapter bytes |",
             "|---|---:|---:|---:|---:|---:|---:|---|---:|---:|",
             f"| base | {cell(base, 'heldout_logprob')} | {cell(base, 'heldout_em', 1)} | {cell(base, 'train_logprob')} | "
             f"{cell(base, 'train_em', 1)} | {cell(base, 'general_ppl', 1, True)} | {cell(base, 'general_qa_accuracy', 1, True)} "
             f"| - | - | - |"]
    for name, v in result["variants"].items():
        s = v["scores"]
        ratio = f" ({v['seconds_per_step'] / plain:.2f})" if plain else ""
        gate = "pass" if v["gate_passed"] else "fail: " + ", ".join(v["gate_failed"])
        lines.append(f"| +{name} | {cell(s, 'heldout_logprob')} | {cell(s, 'heldout_em', 1)} | {cell(s, 'train_logprob')} | "
                     f"{cell(s, 'train_em', 1)} | {cell(s, 'general_ppl', 1, True)} | {cell(s, 'general_qa_accuracy', 1, True)} "
                     f"| {gate} | {v['seconds_per_step']:.2f}{ratio} | {v['adapter_bytes']:,} |")
    data = result["data"]
    lines.append(f"\n{data['train']} training and {data['heldout']} held-out cases from {result['config']['bank']} "
                 f"(generation {data['bank_generation']}, {data['near_duplicates_dropped']} near-duplicates dropped, "
                 f"data hash {data['data_hash'][:12]}); {result['config']['steps']} steps, lr {result['config']['lr']}, "
                 f"batch {result['config']['batch_size']}; general text: {data['general_text']}.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
