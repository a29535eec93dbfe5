"""CorpusSearch: BM25 ranking, the on-disk cache, dense and hybrid search, the LangChain tool."""

from __future__ import annotations

import gzip
import json
import time
from pathlib import Path

import pytest

from memento.errors import ToolError
from memento.tools.search import CorpusSearch, reciprocal_rank_fusion, search_tool

PASSAGES = [
    {"id": "p1", "title": "Python (snake)",
     "text": "The python is a large snake. A python snake kills by constriction; pythons live in Africa and Asia."},
    {"id": "p2", "title": "Python (language)", "text": "Python is a programming language created by Guido van Rossum."},
    {"id": "p3", "title": "Marathon",
     "text": "A marathon is a long-distance foot race; the runner runs 42 kilometres."},
    {"id": "p4", "title": "Felis catus",
     "text": "The domestic feline is a small carnivorous mammal often kept as a house pet."},
    {"id": "p5", "title": "",
     "text": "Title: Mount Everest Text: Mount Everest is Earth's highest mountain above sea level."},
]


def write_corpus(path: Path, rows: list[dict]) -> Path:
    lines = "".join(json.dumps(row) + "\n" for row in rows)
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as out:
            out.write(lines)
    else:
        path.write_text(lines, encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path) -> Path:
    return write_corpus(tmp_path / "corpus.jsonl", PASSAGES)


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def test_bm25_ranks_by_term_frequency_and_leaves_out_non_matches(corpus, cache):
    search = CorpusSearch(corpus, cache_dir=cache)
    hits = search.search("python snake", k=5)
    assert [hit.id for hit in hits] == ["p1", "p2"]
    assert hits[0].score > hits[1].score > 0
    assert hits[0].title == "Python (snake)"


def test_gzipped_corpus_gives_the_same_hits(tmp_path, corpus, cache):
    gzipped = write_corpus(tmp_path / "corpus.jsonl.gz", PASSAGES)
    plain = CorpusSearch(corpus, cache_dir=cache).search("programming language", k=3)
    packed = CorpusSearch(gzipped, cache_dir=cache).search("programming language", k=3)
    assert [(h.id, h.score) for h in packed] == [(h.id, h.score) for h in plain]
    assert plain[0].id == "p2"


def test_stemming_matches_other_forms_of_a_word(corpus, cache):
    pytest.importorskip("Stemmer", reason="PyStemmer is not installed, so no stemming")
    search = CorpusSearch(corpus, cache_dir=cache)
    assert search.stemmer_name == "snowball-english"
    assert [hit.id for hit in search.search("running", k=3)] == ["p3"]


def test_a_query_of_stopwords_finds_nothing(corpus, cache):
    assert CorpusSearch(corpus, cache_dir=cache).search("the of and", k=3) == []


def test_inline_titles_are_split_off(corpus, cache):
    hit = CorpusSearch(corpus, cache_dir=cache).search("highest mountain", k=1)[0]
    assert (hit.id, hit.title) == ("p5", "Mount Everest")
    assert hit.text.startswith("Mount Everest is Earth's highest")


def test_second_open_loads_the_cache_and_a_changed_corpus_rebuilds(corpus, cache):
    first = CorpusSearch(corpus, cache_dir=cache)
    assert first.built == ["passages", "bm25"]
    index_files = {p: p.stat().st_mtime_ns for p in first.cache_path.rglob("*") if p.is_file()}
    assert index_files

    second = CorpusSearch(corpus, cache_dir=cache)
    assert second.built == []
    assert {p: p.stat().st_mtime_ns for p in index_files} == index_files
    assert [h.id for h in second.search("python snake")] == ["p1", "p2"]
    assert not list(cache.rglob(".*tmp-*")), "temporary build folders must not be left behind"

    write_corpus(corpus, PASSAGES + [{"id": "p6", "title": "Zebra", "text": "A zebra is a striped horse."}])
    changed = CorpusSearch(corpus, cache_dir=cache)
    assert changed.built == ["passages", "bm25"]
    assert [h.id for h in changed.search("striped zebra")] == ["p6"]


def test_other_bm25_settings_get_their_own_index(corpus, cache):
    from memento.tools.search import SearchConfig

    CorpusSearch(corpus, cache_dir=cache)
    other = CorpusSearch(corpus, cache_dir=cache, config=SearchConfig(k1=0.9))
    assert other.built == ["bm25"]


def test_bad_input_raises_tool_errors_that_say_what_to_do(tmp_path, corpus, cache):
    with pytest.raises(ToolError, match="does not exist"):
        CorpusSearch(tmp_path / "missing.jsonl", cache_dir=cache)
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"id": "a", "text": "fine"}\n{"title": "no id"}\n')
    with pytest.raises(ToolError, match="line 2"):
        CorpusSearch(broken, cache_dir=cache)
    search = CorpusSearch(corpus, cache_dir=cache)
    with pytest.raises(ToolError, match="k=0"):
        search.search("python", k=0)
    with pytest.raises(ToolError, match="embedder"):
        search.search("python", mode="dense")
    with pytest.raises(ToolError, match="unknown"):
        search.search("python", mode="fuzzy")


def test_reciprocal_rank_fusion_adds_inverse_ranks():
    fused = reciprocal_rank_fusion([[1, 2, 3], [3, 1]], k=60)
    assert [doc for doc, _ in fused] == [1, 3, 2]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)


def test_search_tool_formats_numbered_truncated_passages(corpus, cache):
    tool = search_tool(CorpusSearch(corpus, cache_dir=cache), max_chars_per_passage=30)
    assert tool.name == "search"
    text = tool.invoke({"query": "python snake", "k": 2})
    assert text.startswith("[1] Python (snake): The python is a large snake.")
    assert "\n\n[2] Python (language): " in text
    assert "[truncated: showing 30 of" in text
    assert "no passages match" in tool.invoke({"query": "zzzz"})


@pytest.mark.slow
def test_dense_and_hybrid_search_with_the_packaged_embedder(corpus, cache, real_embedder):
    embedder = real_embedder
    search = CorpusSearch(corpus, cache_dir=cache, embedder=embedder)
    assert search.built == ["passages", "bm25", "dense"]
    # "cat" shares no word with the feline passage: BM25 misses it, the embedding does not.
    assert search.search("cat", k=3, mode="bm25") == []
    assert search.search("cat", k=1, mode="dense")[0].id == "p4"
    hybrid = search.search("python snake", k=2)
    assert [hit.id for hit in hybrid][0] == "p1"
    reopened = CorpusSearch(corpus, cache_dir=cache, embedder=embedder)
    assert reopened.built == []
    assert reopened.search("cat", k=1, mode="dense")[0].id == "p4"


# HotpotQA questions (qa/hotpotqa_500.jsonl, idx 1, 2, 4) whose answer the corpus holds.
HOTPOT_QUESTIONS = [
    ("In the 1973 NFL season, the Pro Bowl took place at what football stadium that is part of the "
     "Truman Sports Complex, along with what other stadium?", "Kauffman Stadium"),
    ("What party campaigned for the Irish Home Rule Movement?", "Home Rule League"),
    ("What was the name of Kalyanji Virji Shah's brother who won the Filmfare Award for Best Music "
     "Director?", "Anandji Virji Shah"),
]


@pytest.mark.slow
@pytest.mark.shared_data
def test_shared_corpus_answers_hotpotqa_questions_in_the_top_five(tmp_path, shared_data):
    corpus = shared_data / "corpus" / "wiki_passages.jsonl.gz"
    if not corpus.is_file():
        pytest.skip(f"the shared corpus is not at {corpus}")
    started = time.perf_counter()
    built = CorpusSearch(corpus, cache_dir=tmp_path)
    build_s = time.perf_counter() - started
    started = time.perf_counter()
    search = CorpusSearch(corpus, cache_dir=tmp_path)
    open_s = time.perf_counter() - started
    print(f"\nshared corpus: {len(search)} passages, index build {build_s:.1f} s, cached open {open_s:.2f} s")
    assert len(search) == 25_716
    assert built.built == ["passages", "bm25"] and search.built == []
    for question, answer in HOTPOT_QUESTIONS:
        hits = search.search(question, k=5)
        assert any(answer in f"{hit.title} {hit.text}" for hit in hits), (question, [h.title for h in hits])
