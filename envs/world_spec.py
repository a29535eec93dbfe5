"""What a fictional world is made of, as data: entity kinds, relations, attributes and question shapes.

A `WorldSpec` says which kinds of entity exist and how their names are made up, which relations
link them and in which sentences a passage states each one, and which questions to ask: a
*shape* is a question template over anchor entities plus the path of relations from the anchor
to the answer. `DEFAULT_SPEC` is the world of companies, founders and inventions, with
look-alike shapes (the founder's versus the CEO's birthplace) that read almost the same but need
another path; `envs.random_world.random_spec(seed)` invents specs of other worlds.

    from memento.envs.fictional_world import build_world
    world = build_world(seed=0, spec=DEFAULT_SPEC)
"""

from __future__ import annotations

import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from memento.errors import ValidationError


@dataclass(frozen=True)
class Naming:
    """How the names of one kind are made up."""

    style: Literal["word", "person"] = "word"
    """'word': one made-up word and a suffix; 'person': a given name and a surname, with a pronoun."""
    suffixes: tuple[str, ...] = ("",)
    """One is appended to each word: glued ('ia' makes 'Bralia') or as a second word (' Motors')."""
    coda: bool = True
    """Whether the word may end in a consonant ('Bralond') before its suffix."""


@dataclass(frozen=True)
class Attribute:
    """A value every entity of a kind has: one of `choices`, else a year drawn from `years`."""

    name: str
    choices: tuple[str, ...] = ()
    years: tuple[int, int] = (1900, 1975)
    """The year's range; offsets from a related entity's year when `after` is set."""
    after: str = ""
    """'relation.attribute': count the year from that related entity's (a company founded after its founder's birth)."""


@dataclass(frozen=True)
class EntityKind:
    """A kind of entity: how many, how named, its attributes and the passages written about each one."""

    name: str
    naming: Naming = Naming()
    share: float | None = None
    """Fraction of the world's entities that are of this kind; None for the one kind that takes the rest."""
    minimum: int = 5
    attributes: tuple[Attribute, ...] = ()
    passages: tuple[str, ...] = ("",)
    """The opening sentence ('' for none) of each passage about an entity; relations add their sentences."""
    distractors: tuple[str, ...] = ()
    """Passages naming the entity beside others ('{city}', '{city2}') and a '{year}' that state no fact."""
    distractor_rate: float = 1.0
    """Chance that each distractor is written for an entity."""


@dataclass(frozen=True)
class Relation:
    """A fact linking a subject to one object, stated once, in one of the subject's passages."""

    name: str
    subject: str
    object: str
    templates: tuple[str, ...]
    """Sentences that state it, one drawn per fact, over '{subject}', '{object}', '{pronoun}' and the subject's attributes."""
    passage: int = 0
    """Which of the subject kind's `passages` the sentence goes into."""
    coverage: float = 1.0
    """Share of subjects that have the relation at all."""
    unique: bool = False
    """No object serves twice, across all unique relations to its kind (a founder is nobody's CEO)."""
    symmetric: bool = False
    """Pairs subjects of one kind with each other (married_to); `coverage` is the share paired."""


@dataclass(frozen=True)
class Shape:
    """A kind of question: its wording over anchor entities and the path from an anchor to the answer."""

    name: str
    template: str
    """The question, with '{0}' for the anchor ('{0}' and '{1}' when comparing)."""
    path: tuple[str, ...]
    """Relation names from the anchor, maybe ending in an attribute: ('founded_by', 'born_in')."""
    compare: Literal["", "earliest", "latest"] = ""
    """Ask about two anchors; the answer is the one whose path ends in the smaller (or larger) year."""
    looks_like: tuple[str, ...] = ()
    """Shapes whose questions read almost the same but need another path."""


@dataclass(frozen=True)
class WorldSpec:
    """Everything a world is made of; `build_world` turns it into entities, passages and questions."""

    name: str
    kinds: tuple[EntityKind, ...]
    relations: tuple[Relation, ...]
    shapes: tuple[Shape, ...]
    min_entities: int = 40
    """The smallest `n_entities` that gives every shape questions."""

    def __post_init__(self) -> None:
        problems = list(_problems(self))
        if problems:
            raise ValidationError(f"world spec {self.name!r} is inconsistent: {'; '.join(problems)}; fix the spec")

    def kind(self, name: str) -> EntityKind:
        """The kind called `name`."""
        return next(kind for kind in self.kinds if kind.name == name)

    def shape(self, name: str) -> Shape:
        """The shape called `name`."""
        return next(shape for shape in self.shapes if shape.name == name)

    def anchor_kind(self, shape: Shape) -> str:
        """The kind of entity a shape's questions are about."""
        first = shape.path[0]
        relation = next((relation for relation in self.relations if relation.name == first), None)
        if relation is not None:
            return relation.subject
        return next(kind.name for kind in self.kinds if first in {attribute.name for attribute in kind.attributes})


def fields(template: str) -> list[str]:
    """The placeholder names in a template: 'born in {object}' -> ['object']."""
    return [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]


def stated_attributes(spec: WorldSpec, kind: str) -> set[str]:
    """The attributes of `kind` that some passage states, so that a question may ask for them."""
    own = {attribute.name for attribute in spec.kind(kind).attributes}
    templates = [*spec.kind(kind).passages, *(t for r in spec.relations if r.subject == kind for t in r.templates)]
    return {name for template in templates for name in fields(template) if name in own}


def _problems(spec: WorldSpec) -> Iterator[str]:
    kinds = {kind.name: kind for kind in spec.kinds}
    relations = {relation.name: relation for relation in spec.relations}
    attributes = {kind.name: {attribute.name: attribute for attribute in kind.attributes} for kind in spec.kinds}
    if len(kinds) < len(spec.kinds) or len(relations) < len(spec.relations):
        yield "kind and relation names must be unique"
        return
    if sum(kind.share is None for kind in spec.kinds) > 1:
        yield "at most one kind may take the rest (share=None)"
    for relation in spec.relations:
        if relation.subject not in kinds or relation.object not in kinds:
            yield f"relation {relation.name!r} links unknown kinds {relation.subject!r} -> {relation.object!r}"
            return
    for kind in spec.kinds:
        own = set(attributes[kind.name])
        for template in kind.passages:
            yield from _unknown_fields(template, {"subject", "pronoun"} | own)
        others = {"subject", "pronoun", "year"} | {f"{name}{digit}" for name in kinds for digit in ("", "2", "3")}
        for template in kind.distractors:
            yield from _unknown_fields(template, others)
        for attribute in kind.attributes:
            relation_name, _, year = attribute.after.partition(".")
            relation = relations.get(relation_name)
            if attribute.after and (relation is None or relation.subject != kind.name or relation.coverage < 1
                                    or year not in attributes[relation.object]):
                yield (f"{kind.name}.{attribute.name} counts from {attribute.after!r}, which is not one of its "
                       f"relations that every {kind.name} has, followed by a year of the kind it links to")
    for relation in spec.relations:
        if relation.name in attributes[relation.subject]:
            yield f"{relation.subject!r} has both a relation and an attribute called {relation.name!r}"
        if not 0 <= relation.passage < len(kinds[relation.subject].passages):
            yield f"relation {relation.name!r} goes into passage {relation.passage}, which {relation.subject!r} lacks"
        if relation.symmetric and relation.subject != relation.object:
            yield f"symmetric relation {relation.name!r} must link one kind to itself"
        for template in relation.templates:
            yield from _unknown_fields(template, {"subject", "object", "pronoun"} | set(attributes[relation.subject]))
            if "object" not in fields(template):
                yield f"relation {relation.name!r} has template {template!r}, which does not state its {{object}}"
    for kind in spec.kinds:
        for number, opening in enumerate(kind.passages):
            yield from _unnamed_passage(spec, kind, number, opening)
    names = [shape.name for shape in spec.shapes]
    if len(set(names)) < len(names):
        yield "shape names must be unique"
    for shape in spec.shapes:
        yield from _path_problems(spec, shape, relations, attributes)
        for other in shape.looks_like:
            if other not in names:
                yield f"shape {shape.name!r} looks like {other!r}, which is not a shape"


def _unnamed_passage(spec: WorldSpec, kind: EntityKind, number: int, opening: str) -> Iterator[str]:
    """A passage must name its subject: in its opening, or in every wording of its first, always-there relation."""
    if "subject" in fields(opening):
        return
    first = next((relation for relation in spec.relations if relation.subject == kind.name
                  and relation.passage == number), None)
    if first is None or first.coverage < 1 or first.symmetric or any(
            "subject" not in fields(template) for template in first.templates):
        yield (f"passage {number} of {kind.name!r} may not name its subject; put {{subject}} in its opening "
               f"or in every template of its first relation, which every {kind.name} must have")


def _unknown_fields(template: str, known: set[str]) -> Iterator[str]:
    for name in fields(template):
        if name not in known:
            yield f"template {template!r} uses {{{name}}}, which is none of {sorted(known)}"


def _path_problems(spec: WorldSpec, shape: Shape, relations: dict, attributes: dict) -> Iterator[str]:
    """Each step must follow from the kind the last one reached; only the last may be an attribute."""
    if not shape.path:
        yield f"shape {shape.name!r} has an empty path"
        return
    known = shape.path[0] in relations or any(shape.path[0] in own for own in attributes.values())
    kind, final = (spec.anchor_kind(shape) if known else None), None
    for number, step in enumerate(shape.path):
        if kind is not None and step in relations and relations[step].subject == kind:
            kind = relations[step].object
        elif kind is not None and step in attributes[kind] and number == len(shape.path) - 1:
            final = attributes[kind][step]
            if step not in stated_attributes(spec, kind):
                yield f"shape {shape.name!r} asks for {kind}.{step}, which no template of {kind!r} states"
        else:
            yield f"shape {shape.name!r} has step {step!r}, which does not follow from kind {kind!r}"
            return
    if shape.compare and (final is None or final.choices):
        yield f"shape {shape.name!r} compares two anchors, so its path must end in a year attribute"
    anchors = ["0", "1"] if shape.compare else ["0"]
    if sorted(fields(shape.template)) != anchors:
        yield f"shape {shape.name!r} has template {shape.template!r}, which must use exactly {{0}}" + (
            " and {1}" if shape.compare else "")


# --- the default world: companies, founders, inventions --------------------------------------

DEFAULT_SPEC = WorldSpec(
    name="default",
    kinds=(
        EntityKind("country", Naming(suffixes=("ia", "land", "ora"), coda=False), share=1 / 30, minimum=3,
                   attributes=(Attribute("export", choices=tuple("tea|copper|wool|timber|salt|glassware".split("|"))),),
                   passages=("{subject} is a country known for its {export}.",)),
        EntityKind("city", Naming(suffixes=("", "ton", "burg", "mora", "vale", "port"), coda=False), share=1 / 6,
                   minimum=6, attributes=(Attribute("feature", choices=tuple(
                       "harbour|glass markets|old bridges|salt mines|spring festival|clock towers".split("|"))),)),
        EntityKind("person", Naming("person"), share=None, attributes=(
            Attribute("birth_year", years=(1900, 1975)),
            Attribute("occupation", choices=tuple(
                "engineer chemist architect economist physician geologist botanist mathematician".split())),
        ), distractors=("In {year}, {subject} gave a lecture tour through {city} and {city2}.",), distractor_rate=0.5),
        EntityKind("company", Naming(suffixes=tuple(
            f" {word}" for word in "Dynamics Works Industries Systems Holdings Foundry Labs Motors".split())),
            share=1 / 8, passages=("", ""), attributes=(
                Attribute("industry", choices=tuple(
                    "shipping textile railway software brewing mining insurance aviation".split())),
                Attribute("founded_in", years=(24, 50), after="founded_by.birth_year"),
            ), distractors=("In {year}, {subject} opened a branch office in {city}.",)),
        EntityKind("invention", Naming(suffixes=tuple("scope graph meter phone lith tron".split()), coda=False),
                   share=1 / 8, attributes=(
                       Attribute("device", choices=tuple("measuring instrument|weaving machine|signal lamp|water pump"
                                                         "|calculating engine|printing press".split("|"))),
                       Attribute("invented_in", years=(22, 48), after="invented_by.birth_year"),
                   ), distractors=("The {subject} was first shown to the public at a fair in {city}.",)),
    ),
    relations=(
        Relation("located_in", "city", "country", ("{subject} is a city in {object}, known for its {feature}.",)),
        Relation("born_in", "person", "city",
                 ("{subject} (born {birth_year}) is a {occupation} who was born in {object}.",)),
        Relation("studied_in", "person", "city", ("{pronoun} studied at the university of {object}.",)),
        Relation("married_to", "person", "person", ("{pronoun} is married to {object}.",), coverage=0.6,
                 symmetric=True),
        Relation("founded_by", "company", "person",
                 ("{subject} is a {industry} company. It was founded in {founded_in} by {object}.",), unique=True),
        Relation("headquartered_in", "company", "city", ("{subject} is headquartered in {object}.",), passage=1),
        Relation("ceo", "company", "person", ("Its chief executive officer (CEO) is {object}.",), passage=1,
                 unique=True),
        Relation("invented_by", "invention", "person",
                 ("The {subject} is a {device} invented by {object} in {invented_in}.",), unique=True),
    ),
    shapes=(
        Shape("founder_birthplace", "In which city was the founder of {0} born?", ("founded_by", "born_in"),
              looks_like=("ceo_birthplace",)),
        Shape("inventor_spouse", "Who is the spouse of the inventor of the {0}?", ("invented_by", "married_to"),
              looks_like=("inventor_birthplace",)),
        Shape("spouse_birthplace", "In which city was the spouse of {0} born?", ("married_to", "born_in"),
              looks_like=("inventor_birthplace",)),
        Shape("hq_country", "In which country is {0} headquartered?", ("headquartered_in", "located_in")),
        Shape("ceo_birth_country", "In which country was the CEO of {0} born?", ("ceo", "born_in", "located_in"),
              looks_like=("founder_birth_country",)),
        Shape("earlier_founded", "Which company was founded earlier, {0} or {1}?", ("founded_in",),
              compare="earliest"),
        Shape("ceo_birthplace", "In which city was the CEO of {0} born?", ("ceo", "born_in"),
              looks_like=("founder_birthplace",)),
        Shape("founder_birth_country", "In which country was the founder of {0} born?",
              ("founded_by", "born_in", "located_in"), looks_like=("ceo_birth_country",)),
        Shape("inventor_birthplace", "In which city was the inventor of the {0} born?", ("invented_by", "born_in"),
              looks_like=("inventor_spouse", "spouse_birthplace")),
    ),
)
"""Today's world: the six original shapes, then three look-alikes of them."""
