"""The FAISS side of the bank: an id-mapped index and its crash-safe file.

The file is FAISS's own serialization followed by a small JSON trailer (format, generation,
kind, dim, body length). It is written to a temporary file, fsynced and renamed over the old
one, so a reader sees the old file or the new one, never half of one. The generation says which
state of SQLite the index reflects; the bank replays SQLite's change log past it.

A writer killed during a save leaves its temporary file (`.<bank>.faiss.<pid>.tmp`) behind;
loading removes those whose process is gone.
"""

from __future__ import annotations

import json
import logging
import os
import re
import struct
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import faiss
import numpy as np

from memento.errors import BankError

MAGIC = b"MEMENTO-FAISS\x00"
FORMAT = 1

log = logging.getLogger("memento.bank")


@dataclass(frozen=True)
class IndexConfig:
    """How vectors are indexed."""

    kind: str = "flat"
    """'flat' (exact inner product) or 'hnsw' (approximate, for large banks)."""
    hnsw_m: int = 32
    """HNSW graph degree."""
    ef_construction: int = 80
    """HNSW build-time beam width."""
    ef_search: int = 64
    """HNSW query-time beam width (higher: better recall, slower)."""
    search_threads: int = 1
    """OpenMP threads per search; waking more costs more than it saves for one query on a small machine."""


class VectorIndex:
    """Inner-product search over unit vectors, keyed by the bank's integer `vid`s.

    HNSW cannot remove vectors, so removed ids are remembered and skipped at search
    time; the bank rebuilds the index when they pile up.
    """

    def __init__(self, dim: int, config: IndexConfig = IndexConfig()):
        self.dim = dim
        self.config = config
        self.index = faiss.IndexIDMap2(self._base_index())
        self.removed: set[int] = set()

    def _base_index(self) -> faiss.Index:
        if self.config.kind == "flat":
            return faiss.IndexFlatIP(self.dim)
        if self.config.kind == "hnsw":
            base = faiss.IndexHNSWFlat(self.dim, self.config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            base.hnsw.efConstruction = self.config.ef_construction
            base.hnsw.efSearch = self.config.ef_search
            return base
        raise ValueError(f"index kind {self.config.kind!r} is not 'flat' or 'hnsw'")

    @property
    def size(self) -> int:
        """Vectors that searches can return."""
        return self.index.ntotal - len(self.removed)

    def add(self, vids: np.ndarray, vectors: np.ndarray) -> None:
        if len(vids):
            self.index.add_with_ids(np.ascontiguousarray(vectors, dtype=np.float32),
                                    np.asarray(vids, dtype=np.int64))

    def remove(self, vids) -> None:
        vids = np.asarray(list(vids), dtype=np.int64)
        if not len(vids):
            return
        if self.config.kind == "flat":
            self.index.remove_ids(faiss.IDSelectorBatch(vids))
        else:
            self.removed.update(int(v) for v in vids)

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores, vids) per query; vid -1 pads when fewer exist. `allowed` restricts to those vids."""
        fetch = min(k + len(self.removed), max(self.index.ntotal, 1))
        selector = faiss.IDSelectorBatch(np.asarray(allowed, dtype=np.int64)) if allowed is not None else None
        if self.config.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(self.config.ef_search, fetch), sel=selector)
        else:
            params = faiss.SearchParameters(sel=selector) if selector is not None else None
        with omp_threads(self.config.search_threads):
            scores, vids = self.index.search(queries, fetch, params=params)
        if self.removed:
            scores, vids = _drop_removed(scores, vids, self.removed, k)
        return scores[:, :k], vids[:, :k]

    def save(self, path: Path, generation: int) -> None:
        """Write atomically: FAISS's own file plus a trailer, fsync, rename, fsync the folder.

        The trailer (JSON, its length, MAGIC) sits after the index bytes, so loading is one
        `faiss.read_index` of the file, with no copy through Python. It holds a CRC-32 of those
        bytes: a file damaged in place (same length, other bytes) would otherwise load and return
        wrong neighbours. A save that fails (a full disk) removes its temporary file and raises
        BankError; the old file stays, and SQLite's change log still covers what it lacks.
        """
        temporary = temporary_path(path, os.getpid())
        try:
            faiss.write_index(self.index, str(temporary))
            body_length = temporary.stat().st_size
            trailer = json.dumps({"format": FORMAT, "generation": generation, "kind": self.config.kind,
                                  "dim": self.dim, "body_bytes": body_length, "crc32": _crc32(temporary, body_length),
                                  "removed": sorted(self.removed)}).encode()
            with open(temporary, "ab") as handle:
                handle.write(trailer + struct.pack("<Q", len(trailer)) + MAGIC)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except (OSError, RuntimeError) as error:  # faiss reports a failed write as RuntimeError
            temporary.unlink(missing_ok=True)
            raise BankError(f"cannot save the index file '{path}' ({' '.join(str(error).split())[-200:]}); the "
                            "cases are safe in SQLite and the index is rebuilt or replayed from it on the next "
                            "open; free disk space (or make the folder writable) and close the bank again") from error
        directory = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    @classmethod
    def load(cls, path: Path, config: IndexConfig) -> tuple["VectorIndex", int]:
        """Read a saved index; ValueError for anything but a complete file of this kind (FileNotFoundError if none).

        Temporary files left by writers that died during a save are removed first.
        """
        remove_stale_temporaries(path)
        size = path.stat().st_size
        with open(path, "rb") as handle:
            if size < len(MAGIC) + 8:
                raise ValueError("index file is too short")
            handle.seek(size - len(MAGIC) - 8)
            (trailer_length,) = struct.unpack("<Q", handle.read(8))
            if handle.read(len(MAGIC)) != MAGIC or trailer_length > size:
                raise ValueError("not a complete memento index file (no trailer)")
            handle.seek(size - len(MAGIC) - 8 - trailer_length)
            trailer = json.loads(handle.read(trailer_length))
        if trailer.get("format") != FORMAT or trailer.get("kind") != config.kind:
            raise ValueError(f"index file format/kind {trailer.get('format')}/{trailer.get('kind')} does not match")
        if trailer["body_bytes"] != size - len(MAGIC) - 8 - trailer_length:
            raise ValueError("index file is truncated")
        if "crc32" in trailer and _crc32(path, trailer["body_bytes"]) != trailer["crc32"]:  # files before the CRC have none
            raise ValueError("index file is damaged (its CRC-32 does not match)")
        vector_index = cls(int(trailer["dim"]), config)
        vector_index.index = faiss.read_index(str(path))  # reads the index part, ignores the trailer
        if config.kind == "hnsw":
            faiss.downcast_index(vector_index.index.index).hnsw.efSearch = config.ef_search
        vector_index.removed = set(trailer.get("removed", []))
        return vector_index, int(trailer["generation"])


def temporary_path(path: Path, pid: int) -> Path:
    """Where process `pid` writes the next version of the index file `path` before renaming it."""
    return path.with_name(f".{path.name}.{pid}.tmp")


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete the temporary files of `path` whose writer process is no longer alive; returns them.

    A live writer's file is left alone: it may be mid-save. (A writer in another PID namespace
    sharing this folder would look dead; banks are shared between processes of one host.)
    """
    pattern = re.compile(rf"^\.{re.escape(path.name)}\.(\d+)\.tmp$")
    removed = []
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed  # an unreadable folder: the load that follows reports it
    for sibling in siblings:
        match = pattern.match(sibling.name)
        if match and not _process_alive(int(match.group(1))):
            try:
                sibling.unlink()
            except FileNotFoundError:
                continue  # another process opening the bank removed it first
            except OSError as error:
                log.warning("cannot remove the stale index file '%s': %s", sibling, error)
                continue
            log.info("removed '%s', left by a writer that died during a save", sibling)
            removed.append(sibling)
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: checks existence and permission, sends nothing
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # alive, owned by another user
    return True


@contextmanager
def omp_threads(n: int):
    """Run FAISS with n OpenMP threads inside the block (a process-wide setting, restored after)."""
    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _crc32(path: Path, length: int) -> int:
    """CRC-32 of the first `length` bytes of a file, read in chunks (an index can be gigabytes)."""
    crc = 0
    with open(path, "rb") as handle:
        while length > 0 and (chunk := handle.read(min(length, 1 << 24))):
            crc = zlib.crc32(chunk, crc)
            length -= len(chunk)
    return crc


def _drop_removed(scores: np.ndarray, vids: np.ndarray, removed: set[int], k: int):
    out_scores = np.full((len(vids), k), -np.inf, dtype=np.float32)
    out_vids = np.full((len(vids), k), -1, dtype=np.int64)
    for row in range(len(vids)):
        keep = [i for i, vid in enumerate(vids[row]) if vid >= 0 and int(vid) not in removed][:k]
        out_scores[row, :len(keep)] = scores[row, keep]
        out_vids[row, :len(keep)] = vids[row, keep]
    return out_scores, out_vids
