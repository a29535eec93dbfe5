"""Eval run folders, as `memento eval run` writes them, read for the inspector.

A run folder holds summary.json (the tables, read through the `evals` plugin's `EvalSummary`, as
`memento eval report` reads it), episodes.jsonl (one record a line, its trace included) and the
PNG plots. `--runs` names one run folder or a folder holding several (searched a few levels
down). An episode is addressed by its position (1-based) in episodes.jsonl: the log is append-only, so
a number always means the same record; a retried episode's earlier record is marked superseded.
"""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pydantic

from memento.errors import DataError, NotFoundError
from memento.plugins import plugin

SUMMARY_FILE = "summary.json"
EPISODES_FILE = "episodes.jsonl"
REPORT_FILE = "report.md"
MAX_DEPTH = 3
SKIPPED_FOLDERS = {"arms", "search_index", "__pycache__"}
"""Folders inside a run that never hold a run: the arms' banks, the search tool's index."""
PLOT_NAME = re.compile(r"[A-Za-z0-9_.-]{1,120}\.png")
EPISODE_KEY = ("arm", "phase", "iteration", "task_id", "attempt")


@dataclass
class Episode:
    """One line of episodes.jsonl: its number, the record, and whether a later line replaced it."""

    number: int
    record: dict[str, Any]
    superseded: bool = False

    def get(self, key: str, default: Any = None) -> Any:
        return self.record.get(key, default)

    @property
    def trace(self) -> dict[str, Any]:
        trace = self.record.get("trace")
        return trace if isinstance(trace, dict) else {}


class RunFolders:
    """The runs under one folder, and a cache of each episodes.jsonl keyed by its size and time."""

    def __init__(self, root: Path | None):
        self.root = Path(root) if root is not None else None
        self._lock = threading.Lock()
        self._episodes: dict[Path, tuple[tuple[int, int], list[Episode]]] = {}

    def names(self) -> list[str]:
        """The runs' names: their paths below the root ('.' for the root itself), sorted."""
        if self.root is None:
            return []
        found = []

        def visit(folder: Path, depth: int) -> None:
            if (folder / SUMMARY_FILE).is_file() or (folder / EPISODES_FILE).is_file():
                found.append(folder.relative_to(self.root).as_posix())
                return
            if depth < MAX_DEPTH:
                for child in sorted(p for p in folder.iterdir() if p.is_dir() and p.name not in SKIPPED_FOLDERS):
                    visit(child, depth + 1)

        visit(self.root, 0)
        return found

    def folder(self, name: str) -> Path:
        """The folder of run `name`; NotFoundError for a name that is not one of `names()`."""
        if name not in self.names():
            where = f"under '{self.root}'" if self.root is not None else "(start with --runs FOLDER)"
            raise NotFoundError(f"run {name!r} is not a run folder {where}; see the runs page")
        return self.root / name

    def summary(self, name: str) -> Any | None:
        """The run's EvalSummary, or None while the run has written no summary yet."""
        path = self.folder(name) / SUMMARY_FILE
        if not path.is_file():
            return None
        try:
            return plugin("evals").EvalSummary.model_validate_json(path.read_bytes())
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            raise DataError(f"'{path}' is not a summary written by `memento eval run` ({first['msg']} at "
                            f"{'.'.join(map(str, first['loc'])) or 'the top'}); run the eval again to rewrite it") from None

    def plots(self, name: str) -> list[str]:
        """The PNG files of the run, by name."""
        return sorted(p.name for p in self.folder(name).glob("*.png") if PLOT_NAME.fullmatch(p.name))

    def plot(self, name: str, plot: str) -> Path:
        if plot not in self.plots(name):
            raise NotFoundError(f"run {name!r} has no plot {plot!r}; it has {self.plots(name)}")
        return self.folder(name) / plot

    def report(self, name: str) -> str | None:
        path = self.folder(name) / REPORT_FILE
        return path.read_text(encoding="utf-8") if path.is_file() else None

    def episodes(self, name: str) -> list[Episode]:
        """Every record of the run's episodes.jsonl, in order (read again only when the file changed)."""
        path = self.folder(name) / EPISODES_FILE
        if not path.is_file():
            return []
        status = path.stat()
        stamp = (status.st_size, status.st_mtime_ns)
        with self._lock:
            cached = self._episodes.get(path)
            if cached is not None and cached[0] == stamp:
                return cached[1]
        episodes = read_episodes(path)
        with self._lock:
            self._episodes[path] = (stamp, episodes)
        return episodes

    def episode(self, name: str, number: int) -> Episode:
        episodes = self.episodes(name)
        if not 1 <= number <= len(episodes):
            raise NotFoundError(f"run {name!r} has episodes 1 to {len(episodes)}, not {number}")
        return episodes[number - 1]


def read_episodes(path: Path) -> list[Episode]:
    """Every record of an episodes.jsonl; a last line not yet (or never) finished is left out.

    Not the runner's `EpisodeLog`: that one keeps only the latest record of each episode and cuts
    an unfinished last line off the file, which must not happen to a run that is writing it now.
    """
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        data = data[: data.rfind(b"\n") + 1]
    episodes: list[Episode] = []
    latest: dict[tuple, Episode] = {}
    for number, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise DataError(f"{path}:{number} is not JSON ({error}); fix or delete that line") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number} is not an episode record (a JSON object); fix or delete that line")
        episode = Episode(len(episodes) + 1, record)
        key = tuple(record.get(k) for k in EPISODE_KEY)
        previous = latest.get(key)
        if previous is None or previous.get("error") is not None:
            if previous is not None:
                previous.superseded = True  # the runner retried an errored episode: the later record counts
            latest[key] = episode
        else:
            episode.superseded = True  # the runner keeps an episode's first finished record
        episodes.append(episode)
    return episodes
