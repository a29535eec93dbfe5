import os
from pathlib import Path

import pytest

from tests.fakes import FakeHashEmbedder

ROOT = Path(__file__).resolve().parents[1]


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
