"""Search over a local passage corpus: BM25 (bm25s), optional dense vectors, or both fused.

The corpus is a JSONL or JSONL.GZ file of `{"id", "title", "text"}` objects. The BM25 index and
the dense vectors are built on first use and cached on disk, under a folder named after the
corpus file's path, size and modification time and the settings, so a changed corpus or other
settings get a fresh index and an unchanged one opens without rebuilding. Cache entries are
written to a temporary name and renamed into place, so a crash or a concurrent build never
leaves a half-written index that a later open would trust.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

import bm25s
import numpy as np
from pydantic import BaseModel, Field

from memento.embedders import Embedder
from memento.errors import ToolError
from memento.tools._common import make_tool, truncate

SearchMode = Literal["bm25", "dense", "hybrid"]
# Bumped when what goes into an index, or the layout of a cache entry, changes: old entries are then not reused.
CACHE_FORMAT = 2
INLINE_TITLE = re.compile(r"Title:\s*(.*?)\s+Text:\s*(.*)", re.DOTALL)


@dataclass(frozen=True)
class Passage:
    """One search hit: the passage and its score (BM25, cosine, or fused rank score)."""

    id: str
    title: str
    text: str
    score: float


@dataclass(frozen=True)
class SearchConfig:
    """How the corpus is tokenised, indexed and searched."""

    k1: float = 1.5
    """BM25 term-frequency saturation."""
    b: float = 0.75
    """BM25 length normalisation."""
    stopwords: str = "en"
    """bm25s stopword list to drop from passages and queries."""
    stem: bool = True
    """Stem English words with PyStemmer's Snowball stemmer when it is installed."""
    rrf_k: int = 60
    """Reciprocal-rank-fusion constant: larger values flatten the weight of top ranks."""
    fusion_depth: int = 50
    """How many hits of each ranking hybrid search fuses."""
    embed_batch_size: int = 256
    """Passages embedded per call when building dense vectors."""


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/memento/search`, or `~/.cache/memento/search`."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "memento" / "search"


def load_passages(path: Path) -> tuple[list[str], list[str], list[str]]:
    """Read a JSONL(.gz) corpus into parallel lists of ids, titles and texts."""
    ids: list[str] = []
    titles: list[str] = []
    texts: list[str] = []
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rt", encoding="utf-8") as lines:
            for number, line in enumerate(lines, 1):
                if not line.strip():
                    continue
                row = json.loads(line)
                if not isinstance(row, dict) or "id" not in row or "text" not in row:
                    raise ToolError(f"line {number} of corpus {str(path)!r} has no 'id' and 'text'; "
                                    "each line must be a JSON object {\"id\", \"title\", \"text\"}")
                title, text = _split_inline_title(str(row.get("title") or ""), str(row["text"]))
                ids.append(str(row["id"]))
                titles.append(title)
                texts.append(text)
    except FileNotFoundError:
        raise ToolError(f"corpus {str(path)!r} does not exist; pass the path of a JSONL or JSONL.GZ file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ToolError(f"corpus {str(path)!r} could not be read ({error}); "
                        "it must be UTF-8 JSONL, gzipped or not, one passage object a line") from error
    if not ids:
        raise ToolError(f"corpus {str(path)!r} holds no passages; it needs at least one JSON line")
    return ids, titles, texts


def _split_inline_title(title: str, text: str) -> tuple[str, str]:
    # Some exports (R1-Searcher's KILT passages, a quarter of the shared corpus) leave the title
    # empty and write the text as "Title: X Text: Y", some of them still CSV-quoted; give such
    # passages their title back.
    if title:
        return title, text
    quoted = len(text) > 1 and text.startswith('"') and text.endswith('"')
    match = INLINE_TITLE.match(text[1:-1].replace('""', '"') if quoted else text)
    return (match.group(1).strip(), match.group(2).strip()) if match else (title, text)


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = 60) -> list[tuple[int, float]]:
    """Fuse rankings of document indices: score = sum over rankings of 1 / (k + rank)."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking, 1):
            scores[doc] = scores.get(doc, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


class CorpusSearch:
    """BM25, dense or hybrid search over a passage corpus, with on-disk cached indexes."""

    def __init__(self, corpus_path: str | os.PathLike, *, embedder: Embedder | None = None,
                 config: SearchConfig | None = None, cache_dir: str | os.PathLike | None = None):
        self.corpus_path = Path(corpus_path).resolve()
        self.config = config or SearchConfig()
        self.embedder = embedder
        self.stemmer_name, stemmer = _english_stemmer() if self.config.stem else ("none", None)
        self._stem = stemmer
        if not self.corpus_path.is_file():
            raise ToolError(f"corpus {str(self.corpus_path)!r} does not exist; "
                            "pass the path of a JSONL or JSONL.GZ file")
        self.cache_root = Path(cache_dir) if cache_dir else default_cache_dir()
        self.cache_path = self.cache_root / _corpus_key(self.corpus_path)
        self.built: list[str] = []
        """What this open had to build rather than load from the cache ("passages", "bm25", "dense")."""
        self.ids, self.titles, self.texts = self._open_passages()
        self._bm25 = self._open_bm25()
        self._vectors = self._open_vectors() if embedder is not None else None

    def __len__(self) -> int:
        return len(self.ids)

    def search(self, query: str, k: int = 5, mode: SearchMode | None = None) -> list[Passage]:
        """The `k` best passages for `query`; `mode` defaults to hybrid with an embedder, else BM25."""
        if k < 1:
            raise ToolError(f"k={k} asks for no results; pass k of 1 or more")
        mode = mode or ("hybrid" if self._vectors is not None else "bm25")
        if mode not in ("bm25", "dense", "hybrid"):
            raise ToolError(f"search mode {mode!r} is unknown; use 'bm25', 'dense' or 'hybrid'")
        if mode != "bm25" and self._vectors is None:
            raise ToolError(f"{mode} search needs dense vectors; open CorpusSearch with an embedder")
        if mode == "bm25":
            hits = self._bm25_ranking(query, k)
        elif mode == "dense":
            hits = self._dense_ranking(query, k)
        else:
            depth = max(k, self.config.fusion_depth)
            rankings = [[i for i, _ in self._bm25_ranking(query, depth)],
                        [i for i, _ in self._dense_ranking(query, depth)]]
            hits = reciprocal_rank_fusion(rankings, self.config.rrf_k)[:k]
        return [Passage(self.ids[i], self.titles[i], self.texts[i], float(score)) for i, score in hits]

    def _bm25_ranking(self, query: str, k: int) -> list[tuple[int, float]]:
        tokens = self._tokenize([query], return_ids=False)[0]
        if not tokens:
            return []
        scores = self._bm25.get_scores(tokens)
        return [(i, s) for i, s in _top_k(scores, k) if s > 0]

    def _dense_ranking(self, query: str, k: int) -> list[tuple[int, float]]:
        query_vector = self.embedder.embed([query])[0]
        return _top_k(self._vectors @ query_vector, k)

    def _tokenize(self, texts: list[str], *, return_ids: bool):
        return bm25s.tokenize(texts, stopwords=self.config.stopwords, stemmer=self._stem,
                              return_ids=return_ids, show_progress=False)

    def _documents(self) -> list[str]:
        return [f"{title}\n{text}" for title, text in zip(self.titles, self.texts, strict=True)]

    def _open_passages(self) -> tuple[list[str], list[str], list[str]]:
        # One JSON document parses several times faster than the gzipped JSONL it came from.
        path = self.cache_path / f"passages-v{CACHE_FORMAT}.json"
        if path.is_file():
            return tuple(json.loads(path.read_text(encoding="utf-8")))
        columns = load_passages(self.corpus_path)
        _write_file_atomically(path, json.dumps(columns, ensure_ascii=False).encode("utf-8"))
        self.built.append("passages")
        return columns

    def _open_bm25(self) -> bm25s.BM25:
        settings = {"k1": self.config.k1, "b": self.config.b, "stopwords": self.config.stopwords,
                    "stemmer": self.stemmer_name, "bm25s": bm25s.__version__, "format": CACHE_FORMAT}
        folder = self.cache_path / f"bm25-{_digest(json.dumps(settings, sort_keys=True))}"
        if not folder.is_dir():
            retriever = bm25s.BM25(k1=self.config.k1, b=self.config.b)
            retriever.index(self._tokenize(self._documents(), return_ids=True), show_progress=False)
            _write_folder_atomically(folder, lambda tmp: retriever.save(str(tmp), show_progress=False))
            self.built.append("bm25")
            return retriever
        try:
            return bm25s.BM25.load(str(folder), show_progress=False)
        except (OSError, ValueError) as error:
            raise ToolError(f"the cached BM25 index at {str(folder)!r} could not be read ({error}); "
                            "delete that folder and open the corpus again to rebuild it") from error

    def _open_vectors(self) -> np.ndarray:
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", self.embedder.name)
        path = self.cache_path / f"dense-{name}-{self.embedder.dim}.npy"
        if path.is_file():
            vectors = np.load(path, mmap_mode="r")
            if vectors.shape == (len(self.ids), self.embedder.dim):
                return vectors
        documents = self._documents()
        step = self.config.embed_batch_size
        vectors = np.concatenate([self.embedder.embed(documents[i:i + step])
                                  for i in range(0, len(documents), step)]).astype(np.float32)
        buffer = io.BytesIO()
        np.save(buffer, vectors)
        _write_file_atomically(path, buffer.getvalue())
        self.built.append("dense")
        return vectors


def search_tool(search: CorpusSearch, *, max_chars_per_passage: int = 600, default_k: int = 5):
    """The `search` LangChain tool: results as numbered `title: text` lines, each passage cut short.

    Called with a tool call (`tool.invoke({"type": "tool_call", ...})`) it also returns the passages
    themselves as the message's artifact ({id, title, text} dicts), which procedures read.
    """

    class SearchArgs(BaseModel):
        query: str = Field(description="What to look for, in a few keywords or a question.")
        k: int = Field(default=default_k, ge=1, le=20, description="How many passages to return.")

    def run(query: str, k: int = default_k) -> tuple[str, list[dict[str, str]]]:
        hits = search.search(query, k)
        if not hits:
            return f"no passages match {query!r}; try other keywords", []
        text = "\n\n".join(f"[{n}] {hit.title + ': ' if hit.title else ''}"
                            f"{truncate(hit.text, max_chars_per_passage)[0]}" for n, hit in enumerate(hits, 1))
        return text, [{"id": hit.id, "title": hit.title, "text": hit.text} for hit in hits]

    return make_tool(run, name="search", args_schema=SearchArgs, artifacts=True,
                     description="Search a local Wikipedia passage corpus; returns the best passages.")


def _english_stemmer() -> tuple[str, object | None]:
    """PyStemmer's English Snowball stemmer (bm25s calls its `stemWords`), if installed."""
    try:
        import Stemmer
    except ImportError:
        return "none", None
    return "snowball-english", Stemmer.Stemmer("english")


def _top_k(scores: np.ndarray, k: int) -> list[tuple[int, float]]:
    k = min(k, len(scores))
    candidates = np.argpartition(-scores, k - 1)[:k]
    # Ties go to the earlier passage, so equal scores rank the same way on every run.
    order = np.lexsort((candidates, -scores[candidates]))
    return [(int(candidates[i]), float(scores[candidates[i]])) for i in order]


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _corpus_key(path: Path) -> str:
    stat = path.stat()
    return f"{path.name}-{_digest(f'{path}|{stat.st_size}|{stat.st_mtime_ns}')}"


def _write_file_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.tmp-", delete=False) as tmp:
        tmp.write(data)
    os.replace(tmp.name, path)


def _write_folder_atomically(folder: Path, write: Callable[[Path], object]) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    try:
        write(tmp)
        try:
            os.rename(tmp, folder)
        except OSError:
            if not folder.is_dir():  # another process renaming its own build in first is fine
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
