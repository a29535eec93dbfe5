"""Distil a real run's bank, with and without each anti-forgetting option, and report before/after.

    python -m memento.evals.distill_check                      # the main job's fictional-world bank
    python -m memento.evals.distill_check --bank path/to/bank.db --steps 20 --out runs/distill_check.json

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memento.evals.benchmarking import machine_info, save_and_print
from memento.bank import CaseBank
from memento.distill import (
    GateRule,
    GeneralSet,
    SelectionConfig,
    TrainConfig,
    select_examples,
)
from memento.distill.gate import run_gate
from memento.distill.model import load_base
from memento.distill.probe import probe
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
    "replay+kl+ema": {"replay_ratio": 0.25, "kl_weight": 0.5, "interpolation": 0.5},
    "ema": {"replay_ratio": 0.0, "kl_weight": 0.0, "interpolation": 0.5},
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
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--lr", type=float, default=5e-3)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--max-length", type=int, default=64, help="tokens per training row (replay text is cut to it)")
    parser.add_argument("--variants", default="none,replay,replay+kl,replay+kl+ema", help="comma-separated, from " + ", ".join(VARIANTS))
    parser.add_argument("--general-passages", type=int, default=12, help="replay passages and probe passages each")
    parser.add_argument("--train-sample", type=int, default=8, help="trained cases probed for recall")
    parser.add_argument("--corpus", type=Path, default=SHARED_CORPUS)
    parser.add_argument("--context", default="none", help="prompt context of the examples: none, procedure, cases")
    parser.add_argument("--generate", action="store_true",
                        help="also score greedy replies (EM, general QA accuracy): a forward pass per token, slow on a CPU")
    parser.add_argument("--memory-run", type=Path, default=None,
                        help="gate check (b): a run folder whose test tasks run with memory on, adapter off and on")
    parser.add_argument("--memory-tasks", type=int, default=5, help="with --memory-run: how many of its test tasks")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/distill_check/result.json"))
    args = parser.parse_args(argv)
    if not args.bank.exists():
        parser.error(f"bank {args.bank} does not exist; run `make main-job` first or give a run's bank.db with --bank")

    workdir = Path(tempfile.mkdtemp(prefix="memento-distill-check-"))
    bank = CaseBank(copy_bank(args.bank, workdir), create=False)
    data = select_examples(bank, SelectionConfig(seed=args.seed, context=args.context))
    general = general_set(args.corpus, args.general_passages)
    sample = data.train[:args.train_sample]
    base, tokenizer = load_base(device="auto")
    memory_tasks = None
    if args.memory_run is not None:
        from memento.evals.distill_memory import memory_task_scorer

        memory_tasks = memory_task_scorer(args.memory_run, work_dir=workdir / "memory-run", limit=args.memory_tasks)
    measured = {"heldout": data.heldout, "general_text": general.probe_text, "general_qa": general.probe_qa,
                "generate": args.generate}
    started = time.perf_counter()
    base_scores = probe(base, tokenizer, **measured)
    base_train = probe(base, tokenizer, heldout=sample, prefix="train", generate=args.generate)
    base_probe_s = time.perf_counter() - started
    result: dict[str, Any] = {
        "created_at": datetime.now(UTC).isoformat(),
        "machine": machine_info(),
        "config": {key: str(value) if isinstance(value, Path) else value for key, value in vars(args).items()},
        "data": {k: v for k, v in data.provenance.items() if not k.endswith("_case_ids")} | {
            "train": len(data.train), "heldout": len(data.heldout), "general_text": general.source},
        "base": {**{k: v.to_dict() for k, v in base_scores.items()}, **{k: v.to_dict() for k, v in base_train.items()},
                 "probe_seconds": base_probe_s},
        "variants": {},
    }
    for name in args.variants.split(","):
        config = TrainConfig(steps=args.steps, lr=args.lr, batch_size=args.batch_size, max_length=args.max_length,
                             seed=args.seed, **VARIANTS[name])
        model = lora_model(load_base(device="auto")[0], config)
        began = time.perf_counter()
        trained = train_adapter(model, tokenizer, data.train, config, replay_texts=general.replay)
        gate = run_gate(model, tokenizer, rule=GateRule(), base_scores=base_scores, memory_tasks=memory_tasks, **measured)
        recall = probe(model, tokenizer, heldout=sample, prefix="train", generate=args.generate)
        memory_alone = gate["scores"]["base"].get("memory_tasks_reward")
        if memory_alone is not None:  # the base row's (b) is memory alone: the same tasks, the adapter off
            result["base"].setdefault("memory_tasks_reward", memory_alone)
        size = sum(p.stat().st_size for p in save_adapter(model, workdir / f"adapter-{name}").iterdir())
        result["variants"][name] = {
            "options": VARIANTS[name], "seconds_per_step": trained.seconds_per_step,
            "seconds_total": time.perf_counter() - began,
            "final_losses": trained.losses[-1], "adapter_bytes": size, "gate_passed": gate["passed"],
            "gate_failed": gate["failed"], "gate_checks": [c["why"] for c in gate["checks"]],
            "eval_tasks": gate["eval_tasks"],
            "scores": {**gate["scores"]["candidate"], **{k: v.to_dict() for k, v in recall.items()}},
        }
        print(f"{name}: gate {'passed' if gate['passed'] else 'failed ' + ', '.join(gate['failed'])}", flush=True)
    save_and_print(result, args.out, table(result))
    bank.close()
    return result


COLUMNS = [("heldout_logprob", "held-out logprob/token", 2, False), ("heldout_em", "held-out EM %", 1, False),
           ("train_logprob", "trained logprob/token", 2, False), ("train_em", "trained EM %", 1, False),
           ("general_ppl", "general ppl [95% CI]", 1, True), ("general_qa_logprob", "general QA logprob [95% CI]", 2, True),
           ("general_qa_accuracy", "general QA % [95% CI]", 1, True),
           ("memory_tasks_reward", "(b) eval tasks with memory on % [95% CI]", 1, True)]


def table(result: dict[str, Any]) -> str:
    """The before/after table in Markdown; a score not measured (no --generate) is left out."""
    rows = {"base": result["base"], **{f"+{n}": v["scores"] for n, v in result["variants"].items()}}
    columns = [c for c in COLUMNS if c[0] in result["base"]]

    def cell(scores: dict, key: str, digits: int, ci: bool) -> str:
        score = scores[key]
        text = f"{score['mean']:.{digits}f}"
        return text + (f" [{score['ci95'][0]:.{digits}f}, {score['ci95'][1]:.{digits}f}]" if ci else "")

    plain = result["variants"].get("none", {}).get("seconds_per_step")
    lines = ["| model | " + " | ".join(c[1] for c in columns) + " | gate | s/step (ratio to none) | adapter bytes |",
             "|---|" + "---:|" * len(columns) + "---|---:|---:|"]
    for name, scores in rows.items():
        variant = result["variants"].get(name[1:], {})
        if variant:
            ratio = f" ({variant['seconds_per_step'] / plain:.2f})" if plain else ""
            tail = [("pass" if variant["gate_passed"] else "fail: " + ", ".join(variant["gate_failed"])),
                    f"{variant['seconds_per_step']:.1f}{ratio}", f"{variant['adapter_bytes']:,}"]
        else:
            tail = ["-", "-", "-"]
        lines.append(f"| {name} | " + " | ".join(cell(scores, *c[0:1], *c[2:]) for c in columns) + " | " + " | ".join(tail) + " |")
    data, config = result["data"], result["config"]
    lines.append(f"\n{data['train']} training and {data['heldout']} held-out cases from {config['bank']} "
                 f"(bank generation {data['bank_generation']}, {data['near_duplicates_dropped']} near-duplicates dropped, "
                 f"data hash {data['data_hash'][:12]}); {config['steps']} steps, lr {config['lr']}, batch "
                 f"{config['batch_size']}, max_length {config['max_length']}; general text: {data['general_text']}.")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
