"""`distill()` end to end on a real bank, twice: the second run starts from the promoted adapter and is
checked against forgetting the first one's held-out cases."""

import pytest

from memento.distill import (
    AdapterRegistry,
    DistillConfig,
    GateRule,
    GeneralSet,
    SelectionConfig,
    TrainConfig,
)
from memento.distill.general_text import GENERAL_QA, PROBE_PASSAGES, REPLAY_PASSAGES
from memento.distill.run import distill

pytestmark = pytest.mark.slow

SMALL = GeneralSet(replay=REPLAY_PASSAGES[:4], probe_text=PROBE_PASSAGES[:4], probe_qa=GENERAL_QA[:4], source="test")


def test_two_distillations_in_a_row(fact_bank, smol):
    config = DistillConfig(
        selection=SelectionConfig(heldout_fraction=0.34, context="none"),
        train=TrainConfig(steps=3, lr=3e-3, batch_size=2, max_length=48, device="cpu"),
        # Lenient on the general probe: three steps on four cases is about the mechanics, not the quality.
        gate=GateRule(max_drop_points=100.0, ci_check=False), generate=False)
    first = distill(fact_bank, config, general=SMALL, progress=False, base=smol)
    assert first["version"] == "v0001" and first["promoted"] and first["warm_start_from"] is None
    assert first["provenance"]["data_hash"] == first["data_hash"] and first["adapter_bytes"] > 0
    assert [c["metric"] for c in first["gate"]["checks"]] == ["heldout_logprob", "general_ppl", "general_qa_logprob"]
    second = distill(fact_bank, config, general=SMALL, progress=False, base=smol)
    assert second["warm_start_from"] == "v0001"
    forgetting = next(c for c in second["gate"]["checks"] if c["metric"] == "previous_heldout_logprob")
    assert forgetting["check"] == "(d) previous adapter's held-out cases" and "drop_points" in forgetting
    registry = AdapterRegistry(fact_bank.path)
    assert [v.name for v in registry.versions()] == ["v0001", "v0002"]
    assert registry.promoted().name == ("v0002" if second["promoted"] else "v0001")
    assert not list((registry.root / "checkpoints").glob("*.pt"))  # checkpoints go once the version is stored
