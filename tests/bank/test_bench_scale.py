"""The scale benchmark runs end to end on a small size, both index kinds, and a raw copy where asked."""

import json

import pytest

from memento.evals.bench_scale import main

pytestmark = pytest.mark.slow  # opens each bank in a fresh process


def test_a_small_run_measures_every_cost_and_reads_raw_faiss_from_the_bank_above_the_threshold(tmp_path):
    out, plot = tmp_path / "scale.json", tmp_path / "scale.png"
    result = main(["--sizes", "300", "1200", "--queries", "30", "--hnsw-max", "1200", "--raw-copy-above", "1000",
                   "--folder", str(tmp_path), "--out", str(out), "--plot", str(plot)])
    assert json.loads(out.read_text())["sizes"].keys() == {"300", "1200"} and plot.stat().st_size > 10_000
    for n in ("300", "1200"):
        for kind in ("flat", "hnsw"):
            entry = result["sizes"][n][kind]
            assert entry["bank_add_per_s"] > 0 and entry["rebuild_s"] > 0 and entry["open"]["open_s"] > 0
            assert entry["search"]["memento"]["p50_ms"] > 0 and entry["search"]["raw_faiss"]["p50_ms"] > 0
            assert entry["policy"]["select"]["p50_ms"] > 0
            raw_copied = n == "1200"
            assert ("raw_faiss_add_per_s" in entry) is not raw_copied
            assert entry.get("raw_faiss", "").startswith("faiss.read_index") is raw_copied
    assert not list(tmp_path.glob("*/*.db*"))  # each size's files are removed once measured
