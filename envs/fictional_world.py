"""The offline task suite: an invented world rendered as passages, with multi-hop questions about it.

`build_world(seed, spec=...)` invents the entities a `WorldSpec` (envs.world_spec) describes,
links them by its relations and writes each fact into a short Wikipedia-like passage about its
subject, beside distractor passages that name the same entities with other places and years. The
default spec is a world of countries, cities, people, companies and inventions (born_in,
located_in, married_to, founded_by, ceo, headquartered_in, invented_by, founded_in);
`random_spec(seed)` (envs.random_world) makes worlds of other kinds, relations and wordings.
Every name is made up and made once, so no model knows an answer from pretraining: it has to
search the corpus.
Questions come in *shapes*; all questions of one shape need the same search plan (find the
company's founder, then where the founder was born), which is what an agent's memory of past
cases can teach, and look-alike shapes (the CEO's birthplace) read almost the same but need
another plan, so a remembered case has to be the right one, not just a similar one.

Everything derives from the seeds: the same seeds give the same passages and questions.

    world = build_world(seed=0)
    world.write_corpus_jsonl("runs/fictional/corpus.jsonl")   # index it with the search tool
    tasks = world.tasks(30, seed=1, split="train")
    unseen = build_world(seed=0, spec=random_spec(7))          # guilds, rivers, ships...
"""

from __future__ import annotations

import gzip
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from memento.envs.metrics import em_f1
from memento.envs.task import Task, select
from memento.envs.random_world import random_spec
from memento.envs.world_spec import DEFAULT_SPEC, Naming, Shape, WorldSpec, fields
from memento.errors import ValidationError

__all__ = ["DEFAULT_SPEC", "SHAPES", "TEST_FRACTION", "Entity", "World", "WorldSpec", "build_world",
           "load_fictional", "random_spec", "score", "spec_from_seed"]

SHAPES: dict[str, str] = {shape.name: shape.template for shape in DEFAULT_SPEC.shapes}
"""The default spec's question shapes: name -> template over the anchor entities."""

TEST_FRACTION = 0.3
"""Share of each shape's questions held out as the 'test' split."""

_ONSETS = "b d f g h k l m n p r s t v z br dr kr st tr th".split()
_VOWELS = "a e i o u a e i o u ae ou".split()
_CODAS = ["", "", "n", "r", "l", "s", "m", "x", "nd", "rk"]


@dataclass
class Entity:
    """An invented entity: its kind, its name, and its facts (relation or attribute name -> value)."""

    kind: str
    name: str
    pronoun: str = "It"
    facts: dict[str, str] = field(default_factory=dict)


@dataclass
class World:
    """An invented world: its entities, the passages that describe them, and where each fact is written."""

    seed: int
    spec: WorldSpec = field(repr=False)
    entities: dict[str, Entity] = field(repr=False)
    """Name -> entity, every kind together; no name is used twice."""
    passages: list[dict[str, str]] = field(default_factory=list, repr=False)
    """The corpus: {id, title, text} dicts, the same form as the shared wiki_passages.jsonl.gz."""
    fact_passage: dict[tuple[str, str], str] = field(default_factory=dict, repr=False)
    """(subject, relation or attribute) -> id of the passage that states it."""

    def of_kind(self, kind: str) -> list[Entity]:
        """The entities of one kind, in the order they were made."""
        return [entity for entity in self.entities.values() if entity.kind == kind]

    def tasks(self, n: int | None = None, seed: int = 0, shapes: list[str] | None = None, split: str = "all") -> list[Task]:
        """`n` distinct questions (all when None), shapes taken in turn, drawn with `seed`.

        `split` is 'train', 'test' or 'all'; train and test never share a question.
        """
        known = [shape.name for shape in self.spec.shapes]
        shapes = known if shapes is None else shapes
        unknown = [shape for shape in shapes if shape not in known]
        if unknown or split not in ("all", "train", "test"):
            raise ValidationError(
                f"shapes {unknown} must be among {known} and split {split!r} one of 'all', 'train', 'test'"
            )
        pools = [[task for task in self._candidates(self.spec.shape(name)) if split in ("all", task.split)]
                 for name in shapes]
        for number, pool in enumerate(pools):
            random.Random(f"{seed}/{number}").shuffle(pool)
        interleaved = [pool[i] for i in range(max(map(len, pools), default=0)) for pool in pools if i < len(pool)]
        if n is not None and n > len(interleaved):
            raise ValidationError(
                f"asked for {n} questions but this world has {len(interleaved)} for shapes {shapes}, "
                f"split {split!r}; build a bigger world (n_entities) or ask for fewer"
            )
        return select(interleaved, n)

    def write_corpus_jsonl(self, path: str | Path) -> Path:
        """Write the passages as JSONL ({id, title, text} a line), gzipped if the name ends in .gz."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with (gzip.open if path.suffix == ".gz" else open)(path, "wt", encoding="utf-8") as handle:
            for passage in self.passages:
                handle.write(json.dumps(passage, ensure_ascii=False) + "\n")
        return path

    # --- questions -----------------------------------------------------------------------

    def _candidates(self, shape: Shape) -> list[Task]:
        """Every question of one shape, each assigned to train or test by a seeded shuffle."""
        chains = list(self._chains(shape))
        order = list(range(len(chains)))
        random.Random(f"{self.seed}/split/{shape.name}").shuffle(order)
        held_out = set(order[: round(len(chains) * TEST_FRACTION)])
        return [
            self._task(shape, anchors, hops, "test" if number in held_out else "train")
            for number, (anchors, hops) in enumerate(chains)
        ]

    def _chains(self, shape: Shape):
        """(anchors, hops) of every question of a shape, anchors in the order they were made."""
        anchors = [entity.name for entity in self.of_kind(self.spec.anchor_kind(shape))]
        if not shape.compare:
            for anchor in anchors:
                if hops := self._walk(anchor, shape.path):
                    yield (anchor,), hops
            return
        # Each anchor against the next one in the list: one comparison per anchor, not all pairs.
        for first, second in zip(anchors, anchors[1:] + anchors[:1]):
            one, other = self._walk(first, shape.path), self._walk(second, shape.path)
            if one and other and one[-1][2] != other[-1][2]:
                yield (first, second), one + other

    def _walk(self, anchor: str, path: tuple[str, ...]) -> list[tuple[str, str, str]] | None:
        """The hops (subject, relation, object) from `anchor` along `path`; None where a fact is missing."""
        hops, name = [], anchor
        for step in path:
            value = self.entities[name].facts.get(step)
            if value is None or value in (anchor, *(subject for subject, _, _ in hops)):
                return None  # no such fact, or a path that comes back on itself
            hops.append((name, step, value))
            name = value
        return hops

    def _task(self, shape: Shape, anchors: tuple[str, ...], hops: list[tuple[str, str, str]], split: str) -> Task:
        answer = hops[-1][2]
        if shape.compare:
            half = len(hops) // 2
            years = [int(hops[half - 1][2]), int(hops[-1][2])]
            answer = anchors[years.index(min(years) if shape.compare == "earliest" else max(years))]
        slug = "-".join(re.sub(r"[^a-z0-9]+", "-", anchor.lower()).strip("-") for anchor in anchors)
        prefix = "fictional" if self.spec.name == DEFAULT_SPEC.name else f"fictional-{self.spec.name}"
        return Task(
            id=f"{prefix}-{self.seed}-{shape.name}-{slug}",
            question=shape.template.format(*anchors),
            gold=[answer],
            benchmark="fictional",
            source="fictional",
            split=split,
            metadata={
                "shape": shape.name,
                "world_seed": self.seed,
                "spec": self.spec.name,
                "hops": [
                    {"subject": subject, "relation": relation, "object": value,
                     "passage_id": self.fact_passage[subject, relation]}
                    for subject, relation, value in hops
                ],
            },
        )


# --- building ------------------------------------------------------------------------------


class _Namer:
    """Short made-up words from syllables; no word is made twice, so every name is unambiguous."""

    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()

    def word(self, suffix: str = "", syllables: int = 2, coda: bool = True) -> str:
        while True:
            stem = "".join(self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) for _ in range(syllables))
            stem = (stem + (self.rng.choice(_CODAS) if coda else "")).capitalize()
            if stem not in self.used and stem + suffix not in self.used:
                self.used |= {stem, stem + suffix}
                return stem + suffix

    def names(self, naming: Naming, count: int) -> list[tuple[str, str]]:
        """`count` (name, pronoun) pairs made as `naming` says."""
        if naming.style == "word":
            return [(self.word(self.rng.choice(naming.suffixes), coda=naming.coda), "It") for _ in range(count)]
        # Few surnames and given names, so relatives and namesakes share words, as real names do.
        surnames = [self.word() for _ in range(max(3, count // 3))]
        endings = {True: ["a", "ine", "ela", "is"], False: ["o", "an", "ek", "us"]}
        given = {female: [self.word(self.rng.choice(endings[female]), syllables=1) for _ in range(max(3, count // 4))]
                 for female in (True, False)}
        people: dict[str, str] = {}
        while len(people) < count:
            female = self.rng.random() < 0.5
            people.setdefault(f"{self.rng.choice(given[female])} {self.rng.choice(surnames)}", "She" if female else "He")
        return list(people.items())


def spec_from_seed(spec_seed: int | None) -> WorldSpec:
    """The default spec for None, else `random_spec(spec_seed)`: how loaders and runners pick a world."""
    return DEFAULT_SPEC if spec_seed is None else random_spec(spec_seed)


def build_world(seed: int = 0, n_entities: int = 120, spec: WorldSpec = DEFAULT_SPEC) -> World:
    """Invent a world of about `n_entities` entities (at least `spec.min_entities`) and render its passages.

    Over the default shapes, 120 entities give 107-111 train and 40-43 test questions (world seeds
    0-29), 4 test questions for each company or invention shape; 200 give 171-177 and 78-81.
    """
    if n_entities < spec.min_entities:
        raise ValidationError(
            f"n_entities={n_entities} is too small; use at least {spec.min_entities} so every shape has questions"
        )
    rng = random.Random(seed)
    namer = _Namer(rng)
    world = World(seed, spec, {})
    for kind, count in _counts(spec, n_entities).items():
        for name, pronoun in namer.names(spec.kind(kind).naming, count):
            world.entities[name] = Entity(kind, name, pronoun)
    _draw_attributes(world, rng, dependent=False)
    _link(world, rng)
    _draw_attributes(world, rng, dependent=True)
    _render(world, rng)
    return world


def _counts(spec: WorldSpec, n_entities: int) -> dict[str, int]:
    counts = {kind.name: max(kind.minimum, int(n_entities * kind.share)) for kind in spec.kinds if kind.share is not None}
    for kind in spec.kinds:
        if kind.share is None:
            counts[kind.name] = n_entities - sum(counts.values())
            if counts[kind.name] < kind.minimum:
                raise ValidationError(f"n_entities={n_entities} leaves {counts[kind.name]} of kind {kind.name!r}, "
                                      f"fewer than its minimum {kind.minimum}; use a larger n_entities")
    return {kind.name: counts[kind.name] for kind in spec.kinds}


def _draw_attributes(world: World, rng: random.Random, *, dependent: bool) -> None:
    """Give every entity its attributes: first those drawn alone, then years counted from a related entity."""
    for kind in world.spec.kinds:
        for attribute in (a for a in kind.attributes if bool(a.after) == dependent):
            for entity in world.of_kind(kind.name):
                if attribute.choices:
                    entity.facts[attribute.name] = rng.choice(attribute.choices)
                    continue
                relation, _, year = attribute.after.partition(".")
                start = int(world.entities[entity.facts[relation]].facts[year]) if relation else 0
                entity.facts[attribute.name] = str(start + rng.randint(*attribute.years))


def _link(world: World, rng: random.Random) -> None:
    """Draw each relation's objects; unique relations to one kind share a pool, so no object serves twice."""
    pools: dict[str, list[str]] = {}
    for relation in world.spec.relations:
        subjects = [entity.name for entity in world.of_kind(relation.subject)]
        objects = [entity.name for entity in world.of_kind(relation.object)]
        if relation.symmetric:
            paired = rng.sample(subjects, 2 * int(len(subjects) * relation.coverage / 2))
            for one, other in zip(paired[::2], paired[1::2]):
                world.entities[one].facts[relation.name], world.entities[other].facts[relation.name] = other, one
            continue
        if relation.unique and relation.object not in pools:
            pools[relation.object] = rng.sample(objects, len(objects))
        pool = pools[relation.object] if relation.unique else objects
        for subject in subjects:
            if relation.coverage < 1 and rng.random() >= relation.coverage:
                continue
            # Never an object the subject already has by another relation: a founder's city of birth
            # differs from where they studied, so look-alike questions have different answers.
            own = {subject, *world.entities[subject].facts.values()}
            choices = [name for name in pool if name not in own]
            if not choices:
                raise ValidationError(f"relation {relation.name!r} ran out of distinct {relation.object!r} objects; "
                                      f"use a larger n_entities or fewer unique relations to that kind")
            if relation.unique:
                obj = choices[-1]
                pool.remove(obj)
            else:
                obj = rng.choice(choices)
            world.entities[subject].facts[relation.name] = obj


def _render(world: World, rng: random.Random) -> None:
    """Write the passages: each fact once, in a passage about its subject, plus distractors."""
    passages = world.passages

    def add(title: str, text: str, facts: list[str] = ()) -> None:
        passage_id = f"fw{world.seed}-{len(passages):04d}"
        passages.append({"id": passage_id, "title": title, "text": re.sub(r"\ba (?=[aeiou])", "an ", text)})
        for fact in facts:
            world.fact_passage.setdefault((title, fact), passage_id)

    for kind in world.spec.kinds:
        relations = [relation for relation in world.spec.relations if relation.subject == kind.name]
        for entity in world.of_kind(kind.name):
            values = {"subject": entity.name, "pronoun": entity.pronoun, **entity.facts}
            for number, opening in enumerate(kind.passages):
                sentences = [opening.format(**values)] if opening else []
                stated = fields(opening)
                for relation in (r for r in relations if r.passage == number and r.name in entity.facts):
                    template = rng.choice(relation.templates)
                    sentences.append(template.format(**values, object=entity.facts[relation.name]))
                    stated += [relation.name, *fields(template)]
                if sentences:
                    add(entity.name, " ".join(sentences), [fact for fact in stated if fact in entity.facts])
            for template in kind.distractors:
                if kind.distractor_rate >= 1 or rng.random() < kind.distractor_rate:
                    add(entity.name, _distractor(template, entity, world, rng))


def _distractor(template: str, entity: Entity, world: World, rng: random.Random) -> str:
    """Fill a distractor: other entities than the subject's own related ones, and a year after its first year."""
    years = [int(entity.facts[a.name]) for a in world.spec.kind(entity.kind).attributes if not a.choices]
    values = {"subject": entity.name, "pronoun": entity.pronoun,
              "year": str(years[0] + rng.randint(20, 50) if years else rng.randint(1900, 2000))}
    taken = {entity.name, *entity.facts.values()}
    for name in fields(template):
        if name not in values:
            chosen = rng.choice([other.name for other in world.of_kind(name.rstrip("0123456789")) if other.name not in taken])
            values[name] = chosen
            taken.add(chosen)
    return template.format(**values)


def load_fictional(
    path: None = None,
    *,
    limit: int | None = None,
    seed: int = 0,
    world_seed: int = 0,
    n_entities: int = 120,
    shapes: list[str] | None = None,
    split: str = "all",
    spec_seed: int | None = None,
) -> list[Task]:
    """Questions about the world built from `world_seed`; `seed` draws which ones. No file needed.

    `spec_seed` builds the world of `random_spec(spec_seed)` instead of the default one: an unseen world.
    """
    if path is not None:
        raise ValidationError(
            f"the fictional suite is generated, not read: got path={str(path)!r}; pass world_seed= instead"
        )
    world = build_world(world_seed, n_entities, spec_from_seed(spec_seed))
    return world.tasks(limit, seed=seed, shapes=shapes, split=split)


def score(task: Task, prediction: str | None) -> dict[str, float]:
    """{"em", "f1"} against the invented answer."""
    return em_f1(prediction, task.gold)
