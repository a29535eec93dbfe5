"""One distillation, end to end: choose cases, train, gate, store, and promote if the gate passed.

    report = distill("cases.db", DistillConfig(train=TrainConfig(steps=40)))
    report["version"], report["gate"]["passed"], report["promoted"]

This is what `memento distill run` and the schedule call. A failed gate stores the adapter (so
`memento distill show` can tell why) but never promotes it.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memento.distill.gate import GateRule, run_gate
from memento.distill.general_text import (
    GENERAL_QA,
    PROBE_PASSAGES,
    REPLAY_PASSAGES,
    GeneralQuestion,
)
from memento.distill.model import base_model_folder, load_base
from memento.distill.registry import AdapterRegistry
from memento.distill.selection import (
    DistillData,
    SelectionConfig,
    Usefulness,
    select_examples,
)
from memento.distill.train import ADAPTER_NAME, TrainConfig, lora_model, train_adapter
from memento.errors import ValidationError

PREVIOUS = "previous"
"""The peft adapter name under which the promoted adapter is loaded for the gate's check (d)."""


@dataclass
class DistillConfig:
    """Everything one distillation needs: which cases, how to train, when to reject, what to do after."""

    selection: SelectionConfig = field(default_factory=SelectionConfig)
    """Which cases become examples."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """LoRA and training settings, with the anti-forgetting options."""
    gate: GateRule = field(default_factory=GateRule)
    """When the candidate is rejected."""
    model: str | None = None
    """Base model folder; None is SmolLM2 dequantized from the packaged GGUF."""
    promote: bool = True
    """Promote the adapter when its gate passes."""
    min_train_examples: int = 2
    """Refuse to train on fewer examples than this."""
    generate: bool = True
    """The gate also scores greedy replies (EM, general QA accuracy); False keeps to the teacher-forced
    log-probabilities and perplexity, several times faster on a CPU."""


@dataclass
class GeneralSet:
    """The general text and questions: replay text to train on, probe text and questions to measure."""

    replay: Sequence[str] = REPLAY_PASSAGES
    probe_text: Sequence[str] = PROBE_PASSAGES
    probe_qa: Sequence[GeneralQuestion] = GENERAL_QA
    source: str = "memento.distill.general_text"


def distill(bank: Any, config: DistillConfig | None = None, *, usefulness: Usefulness | None = None,
            general: GeneralSet | None = None, progress: bool = True,
            base: tuple[Any, Any] | None = None,
            memory_tasks: Callable[[Any, Any], Sequence[float]] | None = None) -> dict[str, Any]:
    """Distil the bank's selected cases into a new adapter version; returns its manifest.

    `base` is an already loaded (model, tokenizer) of `config.model` on `config.train.device`, to
    save loading it again (~10 s on a CPU) in a process that distils more than once; peft wraps it in
    place, so its adapters are unloaded before this returns and it comes back as it was given.
    `memory_tasks` is the gate's check (b) (see `memento.distill.gate.run_gate`).
    """
    config = config or DistillConfig()
    general = general or GeneralSet()
    data = select_examples(bank, config.selection, usefulness=usefulness)
    if len(data.train) < config.min_train_examples:
        raise ValidationError(
            f"only {len(data.train)} training example(s) after selection ({data.provenance['considered']} cases with "
            f"reward >= {config.selection.min_reward}, {data.provenance['near_duplicates_dropped']} near-duplicates "
            f"dropped); need {config.min_train_examples}: let the agent solve more tasks or lower --min-reward")
    registry = AdapterRegistry(bank.path)
    previous = registry.promoted()
    network, tokenizer = base if base is not None else load_base(config.model, config.train.device)
    init_from = previous.adapter_dir if previous is not None and config.train.warm_start else None
    model = lora_model(network, config.train, init_from=init_from)
    try:
        return _distill(model, tokenizer, data, registry, previous, init_from, config, general, progress, memory_tasks)
    finally:
        if base is not None:
            model.unload()


def _distill(model: Any, tokenizer: Any, data: DistillData, registry: AdapterRegistry, previous: Any,
             init_from: Path | None, config: DistillConfig, general: GeneralSet, progress: bool,
             memory_tasks: Callable[[Any, Any], Sequence[float]] | None) -> dict[str, Any]:
    fingerprint = _fingerprint(data, config, init_from)
    checkpoint = registry.root / "checkpoints" / f"{fingerprint[:16]}.pt"
    started = time.time()
    result = train_adapter(model, tokenizer, data.train, config.train, replay_texts=general.replay,
                           checkpoint=checkpoint, fingerprint=fingerprint, progress=progress)
    previous_check = None
    if previous is not None:
        model.load_adapter(str(previous.adapter_dir), adapter_name=PREVIOUS)
        previous_check = (PREVIOUS, previous.heldout())
    gate = run_gate(model, tokenizer, heldout=data.heldout, rule=config.gate, general_text=general.probe_text,
                    general_qa=general.probe_qa, previous=previous_check, candidate=ADAPTER_NAME,
                    generate=config.generate, memory_tasks=memory_tasks)
    with tempfile.TemporaryDirectory(dir=_ensure(registry.root)) as scratch:
        adapter_dir = save_adapter(model, Path(scratch) / "adapter")
        size = sum(p.stat().st_size for p in adapter_dir.iterdir() if p.is_file())
        manifest = {
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "base_model": _base_model_id(config.model),
            "warm_start_from": previous.name if init_from is not None else None,
            "config": _plain(asdict(config)),
            "provenance": {**data.provenance, "general_text": general.source},
            "data_hash": data.provenance["data_hash"],
            "training": {"steps": result.steps, "resumed_from": result.resumed_from, "seconds": result.seconds,
                         "seconds_per_step": result.seconds_per_step,
                         "trainable_parameters": result.trainable_parameters,
                         "final_losses": result.losses[-1] if result.losses else {}},
            "adapter_bytes": size,
            "gate": gate,
        }
        version = registry.add(adapter_dir, manifest, data.heldout)
    checkpoint.unlink(missing_ok=True)  # the version holds the weights now; the checkpoint only served a resume
    promoted = config.promote and gate["passed"]
    if promoted:
        registry.promote(version.name)
    return {**version.manifest, "path": str(version.path), "promoted": promoted}


def save_adapter(model: Any, destination: Path, adapter: str = ADAPTER_NAME) -> Path:
    """Write one adapter of a peft model as a plain peft folder at `destination`."""
    scratch = destination.with_name(destination.name + ".save")
    model.save_pretrained(str(scratch), selected_adapters=[adapter])
    # peft writes a non-default adapter into a subfolder named after it.
    written = scratch / adapter if (scratch / adapter).is_dir() else scratch
    shutil.move(str(written), destination)
    shutil.rmtree(scratch, ignore_errors=True)
    return destination


def _fingerprint(data: DistillData, config: DistillConfig, init_from: Path | None) -> str:
    payload = json.dumps({"data": data.provenance["data_hash"], "train": _plain(asdict(config.train)),
                          "init": str(init_from), "model": config.model}, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()


def _base_model_id(model: str | None) -> str:
    if model:
        return str(model)
    return f"SmolLM2-135M-Instruct (dequantized {base_model_folder().name})"


def _ensure(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _plain(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def config_from_dict(values: dict[str, Any]) -> DistillConfig:
    """A DistillConfig from `asdict(config)` (as the schedule hands it to its background process)."""
    values = dict(values)
    return DistillConfig(selection=SelectionConfig(**values.pop("selection", {})),
                         train=TrainConfig(**values.pop("train", {})), gate=GateRule(**values.pop("gate", {})), **values)
