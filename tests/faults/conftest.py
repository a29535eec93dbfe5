"""Shared pieces of the fault-injection suite: a small tmpfs when the machine lets us mount one, and the CLI."""

import subprocess
import uuid

import pytest
from typer.testing import CliRunner

from memento.cli.banks import EMBEDDERS
from tests.cli.conftest import Cli
from tests.fakes import FakeHashEmbedder


@pytest.fixture
def small_tmpfs(tmp_path):
    """A 2 MiB tmpfs mounted on a fresh folder (root only); skipped where mounting is not allowed."""
    mount_point = tmp_path / f"tmpfs-{uuid.uuid4().hex[:8]}"
    mount_point.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount_point)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({result.stderr.strip() or 'not root'}); "
                    "the RLIMIT_FSIZE tests cover a full disk instead")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def remount(mount_point, mode: str) -> None:
    """Remount the tmpfs read-only ('ro') or read-write ('rw')."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(mount_point)], check=True)


@pytest.fixture
def cli(tmp_path, monkeypatch) -> Cli:
    """The real CLI, in-process, with a fake hash embedder registered (embeddings are beside the point here)."""
    monkeypatch.setitem(EMBEDDERS, "fake-hash", FakeHashEmbedder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MEMENTO_BANK", raising=False)
    return Cli(CliRunner(env={"MEMENTO_EMBEDDER": "fake-hash"}), tmp_path)
