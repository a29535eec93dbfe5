"""The eval config's `distill` field: off by default without changing older runs' fingerprints."""

from memento.evals.config import DistillSpec, EvalConfig


def test_no_distillation_leaves_the_fingerprint_as_it_was():
    plain = EvalConfig()
    assert "distill" not in plain.run_identity()  # runs made before the field existed still resume
    scheduled = EvalConfig(distill=DistillSpec(every=5, options={"train": {"steps": 4}}))
    assert scheduled.run_identity()["distill"] == {"every": 5, "options": {"train": {"steps": 4}}}
    assert scheduled.fingerprint() != plain.fingerprint()
