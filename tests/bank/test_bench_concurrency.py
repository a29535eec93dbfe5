"""The concurrency benchmark's own guarantees on a small level, on each backend: nothing lost, nothing surfaced."""

import pytest

from memento.evals.bench_concurrency import _schema_url, _without_password, run_level


@pytest.mark.slow
def test_writers_and_searchers_lose_no_write_and_surface_no_error(bank_location):
    row = run_level(bank_location("concurrency"), writers=3, searchers=1, cases=300, batch=10)
    assert row["cases_acknowledged"] == 900
    assert row["lost_writes"] == 0 and row["errors"] == 0, row["first_error"]
    assert row["cases_per_s"] > 0 and row["searches"] > 0


def test_each_level_gets_its_own_schema_and_no_password_is_saved():
    url = "postgresql://me:s3cret@db.example/memento?schema=old&index=hnsw"
    assert _schema_url(url, "bench_4w") == "postgresql://me:s3cret@db.example/memento?index=hnsw&schema=bench_4w"
    assert _schema_url("postgresql:///memento", "b") == "postgresql:///memento?schema=b"
    assert _without_password(url) == "postgresql://me:***@db.example/memento?schema=old&index=hnsw"
    assert _without_password("postgresql:///memento?host=/tmp") == "postgresql:///memento?host=/tmp"
