"""Distillation: the case bank's successful experience turned into a LoRA adapter, gated against forgetting.

    from memento.distill import DistillConfig, TrainConfig, distill
    report = distill(bank, DistillConfig(train=TrainConfig(steps=40)))

Needs the extra `memento[distill]` (transformers, peft, gguf) for training; the selection, the
registry and the gate's rule import no model library. Modules, in the order a run uses them:
`selection` (cases -> chat examples, provenance), `train` (LoRA with replay, KL and EMA
interpolation), `probe` + `gate` (base vs base+adapter), `registry` (versions, promote,
rollback), `run` (all of it), `schedule` (every N new successes, in the background).
"""

from memento.distill.gate import GateRule
from memento.distill.registry import AdapterRegistry, AdapterVersion
from memento.distill.run import DistillConfig, GeneralSet, distill
from memento.distill.selection import (
           DistillData,
           Example,
           SelectionConfig,
           select_examples,
)
from memento.distill.train import TrainConfig

__all__ = ["AdapterRegistry", "AdapterVersion", "DistillConfig", "DistillData", "Example", "GateRule", "GeneralSet",
           "SelectionConfig", "TrainConfig", "distill", "select_examples"]
