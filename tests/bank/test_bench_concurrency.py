"""The concurrency benchmark's own check, small: writer and searcher processes on one bank lose nothing."""

import pytest

from memento.evals.bench_concurrency import run_level


@pytest.mark.slow
def test_writers_and_searchers_lose_no_write_and_surface_no_error(tmp_path):
    row = run_level(tmp_path, writers=3, searchers=1, cases=300, batch=10)
    assert row["cases_acknowledged"] == 900
    assert row["lost_writes"] == 0 and row["errors"] == 0, row["first_error"]
    assert row["cases_per_s"] > 0 and row["searches"] > 0
