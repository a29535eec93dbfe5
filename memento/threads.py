"""CPU threads: how many cores this process may use, and torch's thread count for one block of work.

Torch's intra-op thread count is process-wide; the embedder and the neural policy each set the
count their work runs best with, for the length of that work, and put the previous one back.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Iterator


def available_cores() -> int:
    """CPU cores this process may run on: its affinity mask where the OS has one, else every core."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS and Windows have no sched_getaffinity
        return os.cpu_count() or 1


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run torch with `n` intra-op threads inside the block, then restore the previous setting."""
    import torch

    previous = torch.get_num_threads()
    if previous == n:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
