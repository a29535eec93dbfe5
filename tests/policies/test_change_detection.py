"""The change detector's claims: rare false alarms on a steady case, a drop from 70 % noticed within a few shows."""

import numpy as np

from memento.policies.change_detection import ChangeDetector
from memento.policies.neural_q import NeuralQConfig


def stream(detector, rates, seed):
    """Feed one case's outcomes drawn at `rates` (one per show); the show indices where a change was reported."""
    rng, stats, alarms = np.random.default_rng(seed), {}, []
    for i, rate in enumerate(rates):
        reward = float(rng.random() < rate)
        if detector.observe(["c"], reward, stats):
            alarms.append(i)
            detector.reset(["c"])
        shown, total = stats.get("c", (0, 0.0))
        stats["c"] = (shown + 1, total + reward)
    return alarms


def default_detector():
    config = NeuralQConfig()
    return ChangeDetector(config.change_threshold, config.change_drop)


def test_a_steady_case_rarely_raises_a_false_alarm():
    for rate in (0.5, 0.7, 0.9):
        alarms = sum(len(stream(default_detector(), [rate] * 3000, seed)) for seed in range(5))
        assert alarms <= 10, f"{alarms} false alarms in 5 x 3000 shows at {rate:.0%}"


def test_a_drop_from_70_to_15_percent_is_noticed_within_a_few_shows():
    delays = []
    for seed in range(20):
        detector = default_detector()
        alarms = stream(detector, [0.7] * 300 + [0.15] * 100, seed)
        after = [i - 300 for i in alarms if i >= 300]
        delays.append(after[0] if after else 100)
    assert np.median(delays) <= 20


def test_a_new_case_is_not_watched_until_it_has_been_shown_a_few_times():
    detector = default_detector()
    assert not any(detector.observe(["c"], 0.0, {"c": (i, 0.0)}) for i in range(5))
    assert detector.sums == {}


def test_a_region_notices_a_drop_that_no_single_case_sees_long_enough():
    """Each episode shows other cases, so every case's own sum restarts; the region's sum does not."""
    from memento.policies.change_detection import RegionDetector

    config = NeuralQConfig()
    regions = RegionDetector(config.change_threshold, config.change_drop, locality=0.5)
    cases = ChangeDetector(config.change_threshold, config.change_drop)
    here, elsewhere = np.eye(8, dtype=np.float32)[0], np.eye(8, dtype=np.float32)[1]
    rng, stats = np.random.default_rng(0), {}
    for i in range(60):  # 80 % successes, each episode showing two fresh cases
        reward = float(rng.random() < 0.8)
        regions.observe(here, reward)
        regions.observe(elsewhere, reward)
        cases.observe([f"c{i}", f"d{i}"], reward, stats)
    levels = []
    for i in range(60, 66):  # then six failures in a row here, still on fresh cases
        _, level = regions.observe(here, 0.0)
        levels.append(level)
        assert not cases.observe([f"c{i}", f"d{i}"], 0.0, stats), "no case was shown often enough to be watched"
    assert levels[-1] > config.change_threshold, levels
    assert regions.detector.sums.get("region:1", 0.0) < config.suspect_threshold, "the other region saw no change"
    assert len(regions.anchors) == 2


def test_a_change_is_dated_where_the_sum_last_started_rising():
    """CUSUM's change-point estimate: the step after the sum was last zero, so what came after it can be kept."""
    detector = default_detector()
    stats = {"c": (20, 14.0)}  # a case that succeeded 70 % of the time
    for clock in range(10):
        detector.observe(["c"], 1.0, stats, clock)
    assert detector.since(["c"]) is None, "successes keep the sum at zero: nothing is rising"
    crossed = [detector.observe(["c"], 0.0, stats, clock) for clock in range(10, 20)]
    assert any(crossed) and detector.since(["c"]) == 10
    detector.reset(["c"])
    assert detector.since(["c"]) is None
