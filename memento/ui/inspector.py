"""What the inspector reads and changes in a bank: each a call of the library the CLI makes.

Listing and search are `CaseBank.iter_cases` / `count` / `search` with the CLI's filters; an edit
is `changes_from_document` (the check `memento cases edit` runs on an edited document) and
`CaseBank.update`; a delete is the CLI's trash (`move_to_trash`), undone by importing the trash
file (`CaseBank.import_jsonl`); a merge is `find_duplicates` plus the trash, as `cases dedup --apply`.
The policy's scores come from `PolicyView` (see `memento/ui/scoring.py`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memento.bank import CaseBank
from memento.bank.curate import DuplicateGroup, find_duplicates
from memento.case import Case
from memento.cli.banks import move_to_trash, trash_folder
from memento.cli.editing import changes_from_document
from memento.errors import NotFoundError, ValidationError
from memento.ui.queries import CaseQuery
from memento.ui.scoring import PolicyView

TRASH_REASON = "ui"
"""The trash file of a delete made here is `<time>-ui.jsonl`; a merge's is `<time>-merge.jsonl`."""
TRASH_FILE = re.compile(r"[0-9A-Za-z_.-]{1,200}\.jsonl")
JSON_FIELDS = ("metadata", "trajectory", "procedure")


@dataclass
class CaseRow:
    """A case in the table, with its similarity to the search text and the policy's usefulness."""

    case: Case
    similarity: float | None = None
    usefulness: float | None = None


@dataclass
class CasePage:
    rows: list[CaseRow]
    page: int
    has_next: bool
    total: int | None
    """Cases matching the filters (None for a search, which ranks rather than counts)."""
    usefulness_note: str | None = None


@dataclass
class Exposure:
    """How often a case was shown to the agent (by the episodes this bank remembers), and with what outcome."""

    shown_in: list[Case]
    """The episodes' cases whose `selected_case_ids` holds this case."""

    @property
    def times(self) -> int:
        return len(self.shown_in)

    @property
    def successes(self) -> int:
        return sum(c.reward > 0 for c in self.shown_in)

    @property
    def mean_reward(self) -> float | None:
        return sum(c.reward for c in self.shown_in) / len(self.shown_in) if self.shown_in else None


@dataclass
class ShownRow:
    """One case the agent would be shown, as the policy chose it."""

    case: Case
    score: float
    """The policy's score (cosine similarity for the similarity policy, Q(s, c) for learned ones)."""
    similarity: float
    usefulness: float | None = None


@dataclass
class Preview:
    """What the agent would be shown for a task, and why."""

    query: str
    policy: str
    rows: list[ShownRow]
    usefulness_note: str | None = None


@dataclass
class TrashFile:
    """A trash file beside the bank: the cases one delete or merge removed."""

    name: str
    path: Path
    cases: list[dict[str, Any]] = field(default_factory=list)
    restored: bool = False
    """Every case of the file is in the bank again."""

    @property
    def reason(self) -> str:
        return self.path.stem.split("-", 1)[-1]


def form_document(form: Mapping[str, str]) -> dict[str, Any]:
    """The fields of the edit form as a case document (what $EDITOR would hand back), before validation.

    Text fields are taken as typed; the reward is read as JSON when it parses (so '0.5' is a number
    and 'high' reaches the case's own check as text); the plan is one step a line; metadata,
    trajectory and procedure are JSON.
    """
    document: dict[str, Any] = {}
    for key in ("task", "answer"):
        if key in form:
            document[key] = form[key].replace("\r\n", "\n")
    if "namespace" in form:
        document["namespace"] = form["namespace"].strip()
    if "reward" in form:
        try:
            document["reward"] = json.loads(form["reward"])
        except json.JSONDecodeError:
            document["reward"] = form["reward"]
    if "plan" in form:
        document["plan"] = [line.strip() for line in form["plan"].splitlines() if line.strip()]
    for key in JSON_FIELDS:
        if key in form:
            text = form[key].strip()
            if key == "procedure" and not text:
                document[key] = None
                continue
            try:
                document[key] = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValidationError(f"{key} is not valid JSON ({exc}); nothing was changed; "
                                      f"write it as JSON, e.g. {{}} for empty metadata") from None
    return document


class Inspector:
    """The bank operations behind the pages and the API."""

    def __init__(self, bank: CaseBank, *, policy: Path | None = None, page_size: int = 25, k: int = 4):
        self.bank = bank
        self.page_size = page_size
        self.k = k
        self.policy = PolicyView(bank, policy)

    # -- reading ---------------------------------------------------------------------------------

    def cases(self, query: CaseQuery) -> CasePage:
        """One page of the cases matching the query: ranked by similarity to `q`, else newest first."""
        filters = query.filters()
        size, start = self.page_size, (query.page - 1) * self.page_size
        if query.q:
            hits = self.bank.search(query.q, k=start + size + 1, **filters)
            rows = [CaseRow(hit.case, similarity=hit.score) for hit in hits[start:start + size]]
            has_next, total = len(hits) > start + size, None
        else:
            found = list(self.bank.iter_cases(order_by="created_at", descending=True, limit=size + 1, offset=start,
                                              **filters))
            rows = [CaseRow(case) for case in found[:size]]
            has_next, total = len(found) > size, self.bank.count(**filters)
        scores, note = self.policy.usefulness([row.case for row in rows])
        for row in rows:
            row.usefulness = scores.get(row.case.id) if scores else None
        return CasePage(rows, query.page, has_next, total, note)

    def case(self, case_id: str) -> Case:
        return self.bank.get(case_id)

    def exposure(self, case_id: str) -> Exposure:
        """The episodes in this bank that were shown the case (the agent records them in each case it writes)."""
        return Exposure([c for c in self.bank.iter_cases() if case_id in (c.metadata.get("selected_case_ids") or [])])

    def similarity(self, case_id: str, text: str) -> float:
        """Cosine similarity of a case's stored task embedding to `text`, as search and the policies score it."""
        return float(self.bank.vectors([case_id])[0] @ self.bank.embed([text])[0])

    def preview(self, text: str, *, namespace: str | None = None, k: int | None = None) -> Preview:
        """The cases the agent would be shown for `text`: the policy's choice without exploring, as `ask` makes it."""
        if not text.strip():
            raise ValidationError("the task to preview is empty; type the task the agent would be given")
        chosen = self.policy.select(text, k=k or self.k, namespace=tuple(namespace.split("/")) if namespace else None)
        scores, note = self.policy.usefulness([s.case for s in chosen])
        rows = [ShownRow(s.case, s.score, s.similarity, scores.get(s.case.id) if scores else None) for s in chosen]
        return Preview(text, self.policy.kind, rows, note)

    def namespaces(self) -> list[str]:
        return ["/".join(n) for n in self.bank.list_namespaces()]

    # -- changing --------------------------------------------------------------------------------

    def edit(self, case_id: str, form: Mapping[str, str]) -> tuple[Case, list[str]]:
        """Apply the edit form to the case; a ValidationError (nothing changed) when the result is not a valid case."""
        old = self.bank.get(case_id)
        changes = changes_from_document(old, form_document(form))
        if not changes:
            return old, []
        return self.bank.update(case_id, **changes), sorted(changes)

    def delete(self, case_id: str) -> dict[str, Any]:
        """Move the case to the bank's trash (restorable), as `memento cases rm` does."""
        self.bank.get(case_id)
        return move_to_trash(self.bank, [case_id], TRASH_REASON)

    def trash(self) -> list[TrashFile]:
        """The bank's trash files, newest first, with the cases each holds and whether they are back."""
        folder = trash_folder(self.bank)
        files = sorted(folder.glob("*.jsonl"), reverse=True) if folder.is_dir() else []
        return [self._trash_file(path) for path in files]

    def _trash_file(self, path: Path) -> TrashFile:
        cases = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                record = json.loads(line)
                cases.append({"id": record.get("id"), "task": record.get("task"), "reward": record.get("reward")})
        ids = [c["id"] for c in cases if isinstance(c["id"], str)]
        restored = bool(ids) and self.bank.count(ids=ids) == len(ids)
        return TrashFile(path.name, path, cases, restored)

    def trash_file(self, name: str) -> TrashFile:
        """The trash file called `name`; NotFoundError for any other name (no path leaves the trash folder)."""
        path = trash_folder(self.bank) / name
        if not TRASH_FILE.fullmatch(name) or not path.is_file():
            raise NotFoundError(f"trash file {name!r} is not in '{trash_folder(self.bank)}'; see the trash page")
        return self._trash_file(path)

    def restore(self, name: str) -> int:
        """Put a trash file's cases back, with their stored embeddings (all or nothing), as `cases import FILE`."""
        return self.bank.import_jsonl(self.trash_file(name).path)

    def duplicates(self, threshold: float, namespace: str | None = None) -> list[DuplicateGroup]:
        """Groups of near-duplicates and the case each keeps, as `memento cases dedup` lists them."""
        return find_duplicates(self.bank, threshold, namespace=namespace or None)

    def merge(self, keep: str, remove: list[str], threshold: float, namespace: str | None = None) -> dict[str, Any]:
        """Trash the near-duplicates of `keep`, provided the group is still the one the page showed."""
        group = next((g for g in self.duplicates(threshold, namespace) if g.keep.id == keep), None)
        if group is None:
            raise NotFoundError(f"no group of near-duplicates (similarity >= {threshold:g}) keeps case {keep!r} "
                                f"any more; reload the duplicates page; nothing was removed")
        if sorted(c.id for c in group.remove) != sorted(remove):
            raise ValidationError(f"the near-duplicates of case {keep!r} changed since the page was shown; "
                                  f"reload the duplicates page and look again; nothing was removed")
        return move_to_trash(self.bank, remove, "merge")

    def close(self) -> None:
        self.policy.close()

