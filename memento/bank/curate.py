"""Finding near-duplicate cases: the library call behind `memento cases dedup`.

Two cases are near-duplicates when the cosine similarity of their stored task embeddings is at
least the threshold, within one namespace (tenants never merge). Cases are visited best first
(highest reward, then newest); each one not yet claimed keeps every unclaimed near-duplicate
of itself. So a removed case is always within the threshold of the case kept in its place, with
no chaining through a third case.
"""

from dataclasses import dataclass
from typing import Callable

import numpy as np
from tqdm import tqdm

from memento.bank import CaseBank
from memento.case import Case
from memento.errors import ValidationError

BLOCK_ROWS = 512  # rows of the similarity matrix held at once: 512 x n float32


@dataclass
class DuplicateGroup:
    """A case to keep and the near-duplicates of it that would be removed."""

    keep: Case
    remove: list[Case]
    similarities: list[float]
    """Cosine similarity of each removed case to the kept one."""

    def as_record(self) -> dict:
        return {"keep": self.keep.id, "keep_reward": self.keep.reward, "task": self.keep.task,
                "remove": [c.id for c in self.remove], "similarity": [round(s, 4) for s in self.similarities]}


def find_duplicates(bank: CaseBank, threshold: float = 0.95, *, namespace: tuple[str, ...] | str | None = None,
                    progress: bool = False) -> list[DuplicateGroup]:
    """Groups of near-duplicate cases in `bank` (in one namespace, or in each one separately)."""
    if not -1.0 <= threshold <= 1.0:
        raise ValidationError(f"threshold {threshold} is not a cosine similarity; pick one in [-1, 1], e.g. 0.95")
    namespaces = [namespace] if namespace is not None else bank.list_namespaces()
    # disable=None: the bar shows on a terminal and stays out of pipes and logs.
    with tqdm(total=bank.count(namespace=namespace), desc="dedup", unit="case", disable=None if progress else True) as bar:
        groups: list[DuplicateGroup] = []
        for name in namespaces:
            cases = list(bank.iter_cases(namespace=name))
            groups += _groups(cases, bank.vectors([c.id for c in cases]), threshold, bar.update)
    return groups


def _groups(cases: list[Case], vectors: np.ndarray, threshold: float,
            tick: Callable[[int], object]) -> list[DuplicateGroup]:
    neighbours = _neighbours(vectors, threshold, tick)
    order = sorted(range(len(cases)), key=lambda i: (cases[i].reward, cases[i].created_at), reverse=True)
    claimed = np.zeros(len(cases), dtype=bool)
    groups = []
    for i in order:
        if claimed[i]:
            continue
        claimed[i] = True
        duplicates = [(j, s) for j, s in neighbours[i] if not claimed[j]]
        if duplicates:
            claimed[[j for j, _ in duplicates]] = True
            duplicates.sort(key=lambda pair: -pair[1])
            groups.append(DuplicateGroup(cases[i], [cases[j] for j, _ in duplicates], [s for _, s in duplicates]))
    return groups


def _neighbours(vectors: np.ndarray, threshold: float,
                tick: Callable[[int], object]) -> list[list[tuple[int, float]]]:
    """For each row, the other rows at least `threshold`-similar to it, computed a block at a time."""
    found: list[list[tuple[int, float]]] = [[] for _ in range(len(vectors))]
    for start in range(0, len(vectors), BLOCK_ROWS):
        similarities = vectors[start:start + BLOCK_ROWS] @ vectors.T
        tick(len(similarities))
        rows, columns = np.nonzero(similarities >= threshold - 1e-6)  # float32 rounding on exact copies
        for row, column in zip(rows, columns):
            if start + row != column:
                found[start + row].append((int(column), float(similarities[row, column])))
    return found

