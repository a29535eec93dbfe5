"""The policy eval scripts run end to end with a tiny budget and write what they promise."""

import json

import numpy as np
import pytest

from memento.evals import bench_policy, policy_curve


@pytest.mark.slow
def test_policy_curve_writes_json_and_pngs_with_every_baseline(tmp_path, capsys):
    result = policy_curve.main(["--seeds", "2", "--episodes", "10", "--every", "5", "--flip-at", "10", "--after-flip", "10",
                                "--policies", "similarity,random,untrained,neural", "--out", str(tmp_path),
                                "--images", str(tmp_path / "images")])
    saved = json.loads((tmp_path / "curve.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert set(saved["variants"]) == {"heldout", "transfer", "flip"}
    heldout = saved["variants"]["heldout"]
    assert heldout["episodes"] == [0, 5, 10] and set(heldout["policies"]) == {"similarity", "random", "untrained", "neural"}
    for data in heldout["policies"].values():
        assert len(data["per_seed"]) == 2 and len(data["curve"]["mean"]) == 3
        assert all(low <= mean <= high for low, mean, high in zip(data["curve"]["low"], data["curve"]["mean"], data["curve"]["high"]))
    flip = saved["variants"]["flip"]["policies"]["neural"]
    assert len(flip["after"]["mean"]) == len(saved["variants"]["flip"]["after_episodes"]) == 3
    assert len(flip["recovery_episodes"]) == 2 and 0 <= flip["recovered_within_30"] <= 2
    for variant in ("heldout", "transfer", "flip"):
        for folder in (tmp_path, tmp_path / "images"):
            assert (folder / f"policy_{variant}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "random K of the top 32" in out and "untrained network" in out and "== flip ==" in out


def test_confidence_intervals_are_t_intervals_over_seeds():
    values = np.array([[0.2], [0.4], [0.6]])
    ci = policy_curve.interval(values)
    half = 4.303 * np.std(values, ddof=1) / np.sqrt(3)
    assert ci["mean"] == [0.4] and ci["low"] == [pytest.approx(0.4 - half, abs=1e-4)]
    assert ci["high"] == [pytest.approx(0.4 + half, abs=1e-4)]


def test_recovery_is_the_first_checkpoint_within_5_points_of_the_optimum():
    assert policy_curve.recovery([0.2, 0.5, 0.94, 0.9], [300, 310, 320, 330], 0.98, 300) == 20
    assert policy_curve.recovery([0.2, 0.5], [300, 310], 0.98, 300) is None


@pytest.mark.slow
def test_bench_policy_reports_every_measurement_next_to_faiss(tmp_path):
    report = bench_policy.main(["--cases", "300", "--repeats", "3", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "policy.json").read_text())
    assert set(saved["results"]) == set(report["results"]) >= {
        "faiss_raw_search_64", "neural_score_64_and_top_k", "neural_gradient_step_batch_32"}
    assert saved["results"]["faiss_raw_search_64"]["x_faiss_raw"] == 1.0
    assert all(v["median_ms"] > 0 for v in saved["results"].values())
    assert "bare_torch_step_batch_32" in saved["results"]
    assert saved["gradient_step_over_bare_torch"] == pytest.approx(
        saved["results"]["neural_gradient_step_batch_32"]["median_ms"] / saved["results"]["bare_torch_step_batch_32"]["median_ms"])
