"""The policy eval scripts run end to end with a tiny budget and write what they promise."""

import json

import pytest

from evals import bench_policy, policy_curve


@pytest.mark.slow
def test_policy_curve_writes_json_and_png(tmp_path, capsys):
    result = policy_curve.main(["--seeds", "2", "--episodes", "10", "--every", "5", "--repeats", "1",
                                "--policies", "similarity,neural", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "curve.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["episodes"] == [0, 5, 10] and set(saved["policies"]) == {"similarity", "neural"}
    for data in saved["policies"].values():
        assert len(data["success_rate"]["per_seed"]) == 2 and len(data["success_rate"]["mean"]) == 3
        assert all(0.0 <= v <= 1.0 for v in data["success_rate"]["mean"])
    assert (tmp_path / "curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "similarity (top-K cosine)" in capsys.readouterr().out


@pytest.mark.slow
def test_bench_policy_reports_every_measurement_next_to_faiss(tmp_path):
    report = bench_policy.main(["--cases", "300", "--repeats", "3", "--out", str(tmp_path)])
    saved = json.loads((tmp_path / "policy.json").read_text())
    assert set(saved["results"]) == set(report["results"]) >= {
        "faiss_raw_search_64", "neural_score_64_and_top_k", "neural_gradient_step_batch_32"}
    assert saved["results"]["faiss_raw_search_64"]["x_faiss_raw"] == 1.0
    assert all(v["median_ms"] > 0 for v in saved["results"].values())
