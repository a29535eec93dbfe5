"""Spans of text a procedure can take, and the cues around them.

A small model cannot be trusted to copy a name out of a page of results, but a procedure can tell
it where to look: the span right after "founded in # by", in the passage about `{t0}`. This module
finds candidate spans (capitalised names, numbers, short phrases), computes the cue of a span
(the words around it, with variables' values written as `{name}`), and scores candidates
against a learned cue. Plain English text conventions only: nothing here knows any task suite.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from memento.procedure import Cue

WORD = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*")
SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])")
CUE_BEFORE, CUE_AFTER = 4, 2
CAPITALISED = "^"
"""A cue word standing for any capitalised word that is not a variable (so no name leaks into a cue)."""
# Words that start sentences or join names without being names themselves.
FUNCTION_WORDS = frozenset(
    "a an the in on at by for from with as of to and or but is was were be it its he she his her they their "
    "this that these those who whom whose which what when where why how there here after before during since "
    "until while if then".split())
CONNECTORS = frozenset("of de del der von van la le du".split())


@dataclass(frozen=True)
class Token:
    """A word of a sentence: its cue form, where it stands, whether it stands for a variable."""

    norm: str
    start: int
    end: int
    variable: str | None = None


@dataclass(frozen=True)
class Span:
    """A candidate span in a text, with the sentence it stands in."""

    text: str
    start: int
    end: int
    kind: str
    sentence: str
    sentence_start: int


def sentences(text: str) -> list[tuple[int, str]]:
    """(offset, sentence) pairs of a passage."""
    out, offset = [], 0
    for part in SENTENCE_END.split(text):
        start = text.find(part, offset)
        out.append((start, part))
        offset = start + len(part)
    return out


def normalize_word(word: str) -> str:
    """A cue word: lowercased, each run of digits as '#', capitalised words as '^'."""
    if word[:1].isupper() and word.lower() not in FUNCTION_WORDS:
        return CAPITALISED
    return re.sub(r"\d+", "#", word.lower())


def tokens(text: str, values: dict[str, str] | None = None) -> list[Token]:
    """The words of `text`, each occurrence of a variable's value folded into one `{name}` token."""
    return list(_tokens(text, tuple(sorted((values or {}).items()))))


@lru_cache(maxsize=4096)
def _tokens(text: str, values: tuple[tuple[str, str], ...]) -> tuple[Token, ...]:
    # Cached: a hop scores every candidate span of a sentence against the same sentence and values.
    marks: list[tuple[int, int, str]] = []
    for name, value in sorted(values, key=lambda item: -len(item[1])):
        if not value.strip():
            continue
        for match in re.finditer(rf"(?<!\w){re.escape(value)}(?!\w)", text, re.IGNORECASE):
            if all(match.end() <= s or match.start() >= e for s, e, _ in marks):
                marks.append((match.start(), match.end(), name))
    out = [Token("{" + name + "}", s, e, name) for s, e, name in marks]
    for match in WORD.finditer(text):
        if all(match.end() <= s or match.start() >= e for s, e, _ in marks):
            out.append(Token(normalize_word(match.group()), match.start(), match.end()))
    return tuple(sorted(out, key=lambda token: token.start))


def name_spans(text: str) -> list[tuple[int, int]]:
    """Runs of capitalised words ("Lia Marrow", "University of Tamora"), without leading function words."""
    words = list(WORD.finditer(text))
    spans, run = [], []

    def close() -> None:
        while run and (run[-1].group().lower() in CONNECTORS or run[-1].group().lower() in FUNCTION_WORDS):
            run.pop()
        while run and run[0].group().lower() in FUNCTION_WORDS:
            run.pop(0)
        if run:
            spans.append((run[0].start(), run[-1].end()))
        run.clear()

    for word in words:
        text_ = word.group()
        joined = not run or text[run[-1].end():word.start()].strip() == ""
        if text_[:1].isupper() and joined:
            run.append(word)
        elif run and text_.lower() in CONNECTORS and joined:
            run.append(word)
        else:
            close()
            if text_[:1].isupper():
                run.append(word)
    close()
    return spans


def candidate_spans(text: str, kind: str = "name", words: int = 1) -> list[Span]:
    """Every span of `kind` in `text` ('name', 'number', or a 'phrase' of `words` words)."""
    out = []
    for offset, sentence in sentences(text):
        if kind == "name":
            found = name_spans(sentence)
        elif kind == "number":
            found = [(m.start(), m.end()) for m in re.finditer(r"(?<![\w.])\d[\d,.]*\d(?![\w])|(?<![\w.])\d(?![\w])", sentence)]
        else:
            found_words = list(WORD.finditer(sentence))
            found = [(found_words[i].start(), found_words[i + words - 1].end())
                     for i in range(len(found_words) - words + 1)]
        out += [Span(sentence[s:e], offset + s, offset + e, kind, sentence, offset) for s, e in found]
    return out


def span_kind(text: str) -> tuple[str, int]:
    """What kind of span `text` is: ('name', 1), ('number', 1) or ('phrase', number of words)."""
    if re.fullmatch(r"\d[\d,.]*", text.strip()):
        return "number", 1
    if name_spans(text) == [(0, len(text))]:
        return "name", 1
    return "phrase", max(1, min(8, len(WORD.findall(text))))


def cue_at(text: str, start: int, end: int, values: dict[str, str]) -> Cue:
    """The cue of the span text[start:end]: the words of its sentence around it, variables folded in."""
    kind, words = span_kind(text[start:end])
    for offset, sentence in sentences(text):
        if offset <= start < offset + len(sentence) + 1:
            inside = tokens(sentence, values)
            before = [t.norm for t in inside if t.end <= start - offset][-CUE_BEFORE:]
            after = [t.norm for t in inside if t.start >= end - offset][:CUE_AFTER]
            return Cue(before=before, after=after, kind=kind, words=words)
    return Cue(kind=kind, words=words)


def cue_score(span: Span, cue: Cue, values: dict[str, str]) -> tuple[int, int]:
    """(the cue's key words found on their side of `span`, 1 if the nearest word before it is the cue's).

    Key words are the cue's content words and variables, counted on their own side of the span
    within a short window, in any order: a fact stated as "The warden of {t0} is X" and as
    "{t0}'s warden is X" shares {warden, {t0}} before X, while "{t0}'s successor is X" does not.
    """
    inside = tokens(span.sentence, values)
    local_start, local_end = span.start - span.sentence_start, span.end - span.sentence_start
    before = [t.norm for t in inside if t.end <= local_start][-(CUE_BEFORE + 2):]
    after = [t.norm for t in inside if t.start >= local_end][:CUE_AFTER + 1]
    found = len(key_words(cue.before) & set(before)) + len(key_words(cue.after) & set(after))
    nearest = int(bool(cue.before) and bool(before) and before[-1] == cue.before[-1])
    return found, nearest


def key_words(words: list[str]) -> set[str]:
    """The words of a cue that say which fact it is: content words and variables, not function words or '^'."""
    return {w for w in words if w not in FUNCTION_WORDS and w != CAPITALISED}


def cue_needs(cue: Cue) -> int:
    """Key words a span must have around it to match the cue: half of the cue's, at least one."""
    keys = len(key_words(cue.before)) + len(key_words(cue.after))
    return max(1, (keys + 1) // 2) if keys else 0


def overlaps_value(span: Span, values: dict[str, str]) -> bool:
    """Whether the span is, or holds, or is held by a variable's value (the entity already known)."""
    text = span.text.lower()
    return any(value and (value.lower() in text or text in value.lower()) for value in values.values())


def mentions(text: str, value: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(value)}(?!\w)", text, re.IGNORECASE) is not None


def find_answer(text: str, answer: str) -> tuple[int, int] | None:
    """Where `answer` stands in `text` as whole words (case folded), or None."""
    if not answer.strip():
        return None
    match = re.search(rf"(?<!\w){re.escape(answer.strip())}(?!\w)", text, re.IGNORECASE)
    return (match.start(), match.end()) if match else None


def task_values(task: str) -> dict[str, str]:
    """The task's names and numbers as variables t0, t1, ... in reading order (a task's own values)."""
    found = [span.text for kind in ("name", "number") for span in candidate_spans(task, kind)]
    found = sorted(dict.fromkeys(found), key=task.find)
    return {f"t{number}": text for number, text in enumerate(found)}


def content_stems(text: str) -> set[str]:
    """The content words of a text, cut to five letters (a crude stem: 'founded' and 'founder' meet)."""
    return {word.lower()[:5] for word in WORD.findall(text) if word.lower() not in FUNCTION_WORDS and len(word) > 2}
