"""Deterministic stand-ins for tests that are about something else than the real part.

Each is named as a fake; none is ever a default at run time.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np


class FakeHashEmbedder:
    """A bag-of-words hashing embedder: texts sharing words get similar vectors. Fast and deterministic."""

    def __init__(self, dim: int = 64, name: str = "fake-hash"):
        self.dim = dim
        self.name = name

    def embed(self, texts):
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                digest = hashlib.blake2b(word.encode(), digest_size=8).digest()
                out[row, int.from_bytes(digest[:4], "little") % self.dim] += 1.0 if digest[4] & 1 else -1.0
            norm = np.linalg.norm(out[row])
            out[row] = out[row] / norm if norm else out[row]
            if not norm:
                out[row, 0] = 1.0
        return out
