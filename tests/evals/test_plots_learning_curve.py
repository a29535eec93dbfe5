"""learning_curve.png: EM by training episode per arm, the test pass as bands; written only with training data."""

import matplotlib.image
import numpy as np
import pytest

from memento.evals.plots import LEARNING_CURVE_PLOT, plot_learning_curve, running_mean, write_plots
from memento.evals.records import summarize
from tests.evals.test_report_ci import episode, split_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_running_mean_averages_the_last_window_values():
    assert running_mean([1, 0, 1, 1, 0], 2) == pytest.approx([1.0, 0.5, 0.5, 1.0, 0.5])
    assert running_mean([1, 0, 1], 10) == pytest.approx([1.0, 0.5, 2 / 3])
    assert running_mean([1, 0, 1], 1) == pytest.approx([1.0, 0.0, 1.0])


def test_the_learning_curve_is_a_valid_png_with_the_test_bands(tmp_path):
    summary, _ = split_run()

    written = write_plots(summary, tmp_path)

    path = tmp_path / LEARNING_CURVE_PLOT
    assert written[0] == path and path.read_bytes().startswith(PNG_MAGIC)
    image = matplotlib.image.imread(path)
    height, width, _ = image.shape
    assert height > 300 and width > 600
    assert np.unique(image.reshape(-1, image.shape[-1]), axis=0).shape[0] > 20, "more than a blank canvas"


def test_an_iterated_run_gets_the_curve_without_bands_and_a_test_only_log_gets_none(tmp_path):
    records = [episode(arm, "train", it, f"t{i}", float(i % 2)) for arm in ("none", "neural")
               for it in (1, 2) for i in range(4)]
    iterated = summarize(records, run_dir="run", protocol="iterated", arms=["none", "neural"], iterations=2,
                         attempts=1, expected_episodes=len(records))
    assert plot_learning_curve(iterated, tmp_path / "curve.png", window=3).read_bytes().startswith(PNG_MAGIC)

    test_only = summarize([episode("none", "test", 1, "t", 1.0)], run_dir="run", protocol="split", arms=["none"],
                          iterations=1, attempts=1, expected_episodes=1)
    assert test_only.training_curves == []
    (tmp_path / "other").mkdir()
    assert not any(p.name == LEARNING_CURVE_PLOT for p in write_plots(test_only, tmp_path / "other"))
