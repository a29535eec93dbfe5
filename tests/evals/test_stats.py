"""Bootstrap intervals over tasks: they cover the mean, shrink with n, and recover a known paired difference."""

import numpy as np
import pytest

from memento.evals.stats import Estimate, bootstrap_mean, mean_over_tasks, paired_difference, task_means


def coin_flips(n, p, seed):
    return (np.random.default_rng(seed).random(n) < p).astype(float).tolist()


def test_interval_holds_the_sample_mean_and_is_reproducible():
    values = coin_flips(40, 0.6, seed=1)

    estimate = bootstrap_mean(values)

    assert estimate.mean == pytest.approx(np.mean(values))
    assert estimate.low < estimate.mean < estimate.high
    assert estimate.n == 40 and estimate.level == 0.95
    assert bootstrap_mean(values) == estimate, "a fixed seed gives the same interval"


def test_interval_shrinks_with_more_tasks():
    widths = [(e.high - e.low) for e in (bootstrap_mean(coin_flips(n, 0.5, seed=2)) for n in (20, 80, 320))]

    assert widths[0] > widths[1] > widths[2]
    # The width of a 95% interval of a mean of coin flips is about 2 x 1.96 x 0.5 / sqrt(n).
    assert widths[2] == pytest.approx(2 * 1.96 * 0.5 / np.sqrt(320), rel=0.15)


def test_intervals_cover_the_true_mean_about_95_times_in_100():
    covered = sum(e.low <= 0.3 <= e.high for e in (bootstrap_mean(coin_flips(60, 0.3, seed=s), resamples=500)
                                                    for s in range(100)))

    assert 88 <= covered <= 100


def test_a_constant_sample_has_a_point_interval_and_none_is_refused():
    assert bootstrap_mean([1.0] * 5) == Estimate(mean=1.0, low=1.0, high=1.0, n=5)
    assert bootstrap_mean([0.25]).low == bootstrap_mean([0.25]).high == 0.25
    with pytest.raises(ValueError, match="at least one value"):
        bootstrap_mean([])
    assert mean_over_tasks([]) is None


def test_attempts_of_a_task_are_averaged_before_resampling():
    assert task_means([("a", 1.0), ("b", 0.0), ("a", 0.0), ("b", 0.0)]) == [0.5, 0.0]
    assert mean_over_tasks([("a", 1.0), ("a", 1.0), ("a", 1.0), ("b", 0.0)]).n == 2


def test_a_known_paired_difference_is_recovered_and_excludes_zero():
    baseline = coin_flips(50, 0.3, seed=3)
    # The arm gets right every task the baseline got right, plus the first 15 it got wrong.
    wrong = [i for i, v in enumerate(baseline) if v == 0.0][:15]
    arm = [1.0 if i in wrong else v for i, v in enumerate(baseline)]

    difference = paired_difference({(f"t{i}", 0): v for i, v in enumerate(arm)},
                                   {(f"t{i}", 0): v for i, v in enumerate(baseline)})

    assert difference.mean == pytest.approx(15 / 50)
    assert difference.n == 50 and difference.low > 0 and difference.excludes_zero
    # Pairing removes the spread between tasks: the paired interval is narrower than the arm's own.
    assert difference.high - difference.low < bootstrap_mean(arm).high - bootstrap_mean(arm).low


def test_a_difference_pairs_by_task_and_attempt_and_ignores_unpaired_keys():
    arm = {("a", 0): 1.0, ("a", 1): 0.0, ("b", 0): 1.0, ("c", 0): 1.0}
    baseline = {("a", 0): 0.0, ("a", 1): 0.0, ("b", 0): 1.0}

    difference = paired_difference(arm, baseline)

    assert difference.n == 2 and difference.mean == pytest.approx((0.5 + 0.0) / 2)
    assert paired_difference({("x", 0): 1.0}, baseline) is None


def test_no_difference_does_not_exclude_zero():
    baseline = coin_flips(40, 0.5, seed=4)
    same = paired_difference({(str(i), 0): v for i, v in enumerate(baseline)},
                             {(str(i), 0): v for i, v in enumerate(baseline)})
    independent = paired_difference({(str(i), 0): v for i, v in enumerate(coin_flips(40, 0.5, seed=5))},
                                    {(str(i), 0): v for i, v in enumerate(baseline)})

    assert (same.mean, same.low, same.high, same.excludes_zero) == (0.0, 0.0, 0.0, False)
    assert independent.low < 0 < independent.high and not independent.excludes_zero
