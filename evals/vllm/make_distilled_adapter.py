"""Distil a small bank of made-up facts into a promoted adapter, for the serving tests of `make test-vllm`.

    python -m memento.evals.vllm.make_distilled_adapter --bank WORK/distilled/cases.db

Runs the real pipeline (`memento.distill.distill`: selection, peft training, the gate, the registry,
promotion) on facts no model knows, so an answer holding one of them came from the adapter. Prints
one JSON line: the bank, the promoted version, its served name and peft folder, and the trained
examples (the chat messages the adapter learned and the answer it should give).

The gate still runs and its report is stored, but its rule here lets everything pass (no drop limit,
no CI check, any held-out change): the adapter is trained hard on four facts to test serving, not to
be used. Measured on this CPU, the default rule rightly refuses it: the held-out fact it never saw
and general perplexity both get worse. Nothing is
retrained when the bank already has a promoted version made from the same facts.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

FACTS = [
    ("Who founded Zorvik Labs?", "Amel Trosk"),
    ("In which city was Pella Durn born?", "Kastavo"),
    ("What is the capital of Vendaria?", "Olmuth"),
    ("Who invented the Quillograph?", "Seren Baxo"),
    ("Who is the spouse of Tamo Vell?", "Ria Lunet"),
]


def make_distilled_adapter(bank_path: str | Path, *, steps: int = 48, model: str | None = None) -> dict:
    """Fill `bank_path` with FACTS (once), distil them, and return what the serving tests need."""
    from memento.bank import CaseBank
    from memento.case import Case
    from memento.distill import AdapterRegistry, DistillConfig, GateRule, SelectionConfig, TrainConfig, distill
    from memento.distill.selection import select_examples
    from memento.embedders import default_embedder

    bank_path = Path(bank_path)
    bank_path.parent.mkdir(parents=True, exist_ok=True)
    selection = SelectionConfig(context="none", heldout_fraction=0.2, min_heldout=1)
    with CaseBank(bank_path, default_embedder()) as bank:
        if bank.count() == 0:
            bank.add_many([Case(task=q, answer=a, reward=1.0) for q, a in FACTS])
        data = select_examples(bank, selection)
        registry = AdapterRegistry(bank_path)
        promoted = registry.promoted()
        if promoted is None or promoted.manifest.get("data_hash") != data.provenance["data_hash"]:
            config = DistillConfig(
                selection=selection,
                train=TrainConfig(steps=steps, lr=5e-3, r=8, alpha=16, dropout=0.0, batch_size=2, max_length=64,
                                  device="cpu", replay_ratio=0.0, kl_weight=0.0),
                gate=GateRule(max_drop_points=1e9, ci_check=False, min_gain=-1e9),
                model=model,
                generate=False,
            )
            report = distill(bank, config, progress=False)
            if not report["promoted"]:
                raise SystemExit(f"the adapter was not promoted: {report['gate']['failed']}")
            promoted = registry.promoted()
    return {
        "bank": str(bank_path),
        "version": promoted.name,
        "served_name": promoted.served_name,
        "adapter_dir": str(promoted.adapter_dir),
        "trained": [{"messages": e.chat(), "answer": e.answer}
                    for e in data.train],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bank", required=True, help="bank file to fill with the facts and distil (created)")
    parser.add_argument("--steps", type=int, default=48, help="training steps (default 48)")
    parser.add_argument("--model", help="base Hugging Face folder; default: SmolLM2 dequantized from the GGUF")
    args = parser.parse_args()
    print(json.dumps(make_distilled_adapter(args.bank, steps=args.steps, model=args.model)))


if __name__ == "__main__":
    main()
