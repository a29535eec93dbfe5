"""Worlds nobody wrote: `random_spec(seed)` invents a `WorldSpec` the code has never seen.

Its kinds (guilds, rivers, a kind of captain...), relation names, sentences and question wordings
are drawn at random from word lists that share no word with the default spec, and its shapes
follow paths of 1-3 hops. It is for tests that prove memory induction is generic: nothing that
works on a random world can lean on the default world's wording.

    world = build_world(seed=0, spec=random_spec(3))          # envs.fictional_world
    world.tasks(10, split="train")
"""

from __future__ import annotations

import random

from memento.envs.world_spec import Attribute, EntityKind, Naming, Relation, Shape, WorldSpec

_THINGS = ("guild river ship lighthouse abbey orchard observatory regiment vineyard ferry quarry choir canal fortress "
           "glacier theatre").split()
_PERSONS = "captain abbot cartographer sculptor navigator herbalist poet falconer".split()
_TRAITS = {
    "emblem": "heron anvil lantern thistle compass serpent",
    "hue": "crimson ochre teal umber violet saffron",
    "timber": "oak cedar larch walnut birch yew",
    "cargo": "amber pepper indigo marble flax cinnamon",
    "instrument": "lute harp fiddle horn drum flute",
    "stone": "granite basalt slate marble flint chalk",
}
_THING_YEARS = "chartered launched consecrated surveyed restored dredged rebuilt".split()
_PERSON_YEARS = "apprenticed ordained knighted elected exiled pardoned".split()
_ROLES = [  # (noun, verb): "the <noun> of S is O" says the same as "S <verb> O"
    ("keeper", "is kept by"), ("patron", "is sponsored by"), ("warden", "is guarded by"), ("rival", "rivals"),
    ("mentor", "was trained by"), ("steward", "is looked after by"), ("namesake", "is named after"),
    ("ally", "is allied with"), ("benefactor", "is funded by"), ("overseer", "is overseen by"),
    ("twin", "is twinned with"), ("successor", "was succeeded by"), ("custodian", "is in the care of"),
    ("chronicler", "is chronicled by"), ("supplier", "is supplied by"), ("landlord", "rents from"),
]
_GLUED = "wick holm stead fell mouth garth ness mere dale thorpe haven".split()
_STATEMENTS = ["The {noun} of {{subject}} is {{object}}.", "{{subject}} {verb} {{object}}.",
               "{{subject}}'s {noun} is {{object}}."]
_SECOND_OPENINGS = ["Records of {subject} go back many generations.", "{subject} appears often in the old registers.",
                    "Travellers still write about {subject}."]
_RUMOURS = ["In {year}, {subject} was mentioned in a letter about {%s}.",  # %s: another kind, filled in per entity
            "A ledger from {year} lists {subject} beside {%s}.", "{subject} was sketched by a traveller near {%s} in {year}."]
_OPENERS = ["Which {kind} is {chain}?", "Name {chain}.", "What is the name of {chain}?", "Who or what is {chain}?"]


def random_spec(seed: int) -> WorldSpec:
    """A world nobody wrote: 3-4 invented kinds, relations with made-up wordings, 5-7 shapes of 1-3 hops.

    Two relations always link the same two kinds, and two shapes differ only there (a look-alike pair).
    """
    rng = random.Random(f"random_spec/{seed}")
    n_kinds = rng.randint(3, 4)
    names = rng.sample(_THINGS, n_kinds)
    person_at = rng.randrange(n_kinds + 1)  # maybe one kind of people; n_kinds means none
    if person_at < n_kinds:
        names[person_at] = rng.choice(_PERSONS)
    traits = dict(zip(names, rng.sample(sorted(_TRAITS), n_kinds)))
    years = dict(zip(names, rng.sample(_THING_YEARS, n_kinds)))
    if person_at < n_kinds:
        years[names[person_at]] = rng.choice(_PERSON_YEARS)

    chain = rng.sample(names, n_kinds)
    pairs = list(zip(chain, chain[1:]))
    twin = rng.randrange(len(pairs))
    pairs.append(pairs[twin])  # the look-alike: a second relation between the same two kinds
    pairs += [(rng.choice(names), rng.choice(names)) for _ in range(rng.randint(1, 2))]
    relations = []
    for (subject, object_), (noun, verb) in zip(pairs, rng.sample(_ROLES, len(pairs))):
        wordings = rng.sample(_STATEMENTS, rng.randint(1, 2))
        relations.append(Relation(noun, subject, object_, tuple(w.format(noun=noun, verb=verb) for w in wordings),
                                  passage=rng.randint(0, 1), coverage=rng.choice([1.0, 1.0, 0.8])))
    kinds = tuple(_random_kind(name, traits[name], years[name], index == person_at, names, relations, rng)
                  for index, name in enumerate(names))
    shapes = _random_shapes(relations, kinds, (relations[twin], relations[n_kinds - 1]), years, rng)
    return WorldSpec(f"random-{seed}", kinds, tuple(relations), shapes)


def _random_kind(name: str, trait: str, year_verb: str, person: bool, names: list[str],
                 relations: list[Relation], rng: random.Random) -> EntityKind:
    year = f"{year_verb}_in"
    opening = f"{{subject}} is a {name} whose {trait} is {{{trait}}}. {{pronoun}} was {year_verb} in {{{year}}}."
    passages = (opening, rng.choice(_SECOND_OPENINGS))
    if not any(relation.subject == name and relation.passage == 1 for relation in relations):
        passages = passages[:1]
    suffixes = tuple(rng.sample(_GLUED, 3)) if rng.random() < 0.6 else (f" {name.capitalize()}",)
    others = [other for other in names if other != name] or names
    return EntityKind(
        name, Naming("person") if person else Naming(suffixes=suffixes, coda=rng.random() < 0.5),
        share=None if name == names[-1] else 1 / len(names),
        attributes=(Attribute(trait, choices=tuple(_TRAITS[trait].split())), Attribute(year, years=(1650, 1900))),
        passages=passages,
        distractors=tuple(rumour % rng.choice(others) for rumour in rng.sample(_RUMOURS, rng.randint(1, 2))),
    )


def _random_shapes(relations: list[Relation], kinds: tuple[EntityKind, ...], twins: tuple[Relation, Relation],
                   years: dict[str, str], rng: random.Random) -> tuple[Shape, ...]:
    """The look-alike pair first, then one path of each length, then others: 5-7 shapes."""
    paths = _paths(relations, kinds)
    first, second = twins
    twin_of = {first.name: second.name, second.name: first.name}
    lookalike = rng.choice([path for path in paths if path[0] == first.name and second.name not in path])
    chosen = [lookalike, (second.name, *lookalike[1:])]
    entities = [path for path in paths if path[-1] in {relation.name for relation in relations}]
    for length in (1, 2, 3):
        chosen.append(rng.choice([path for path in entities if len(path) == length]
                                 or [path for path in paths if len(path) == length]))
    rest = [path for path in paths if path not in chosen]
    chosen += rng.sample(rest, min(len(rest), rng.randint(0, 2)))
    chosen = list(dict.fromkeys(chosen))
    opener = rng.choice(_OPENERS)
    shapes = []
    for path in chosen:
        pair = path[0] in twin_of and (twin_of[path[0]], *path[1:]) in chosen
        wording = opener if pair else rng.choice(_OPENERS)
        shapes.append(Shape("_of_".join(reversed(path)), _question(path, relations, kinds, years, wording), path,
                            looks_like=("_of_".join(reversed((twin_of[path[0]], *path[1:]))),) if pair else ()))
    return tuple(shapes)


def _paths(relations: list[Relation], kinds: tuple[EntityKind, ...]) -> list[tuple[str, ...]]:
    """Every path of 1-3 steps: relations that follow on, no relation twice, maybe ending in a year.

    Not in a trait such as 'hue': with six values to choose from, a guess would be right too often.
    """
    paths, frontier = [], [((), kind.name) for kind in kinds]
    for _ in range(3):
        grown = []
        for path, kind in frontier:
            grown += [((*path, r.name), r.object) for r in relations if r.subject == kind and r.name not in path]
            years = [a.name for a in next(k for k in kinds if k.name == kind).attributes if not a.choices]
            paths += [(*path, year) for year in years]
        paths += [path for path, _ in grown]
        frontier = grown
    return paths


def _question(path: tuple[str, ...], relations: list[Relation], kinds: tuple[EntityKind, ...],
              years: dict[str, str], opener: str) -> str:
    by_name = {relation.name: relation for relation in relations}
    chain = "{0}"
    kind = by_name[path[0]].subject if path[0] in by_name else next(
        k.name for k in kinds if path[0] in {attribute.name for attribute in k.attributes})
    for step in path:
        if step in by_name:
            chain, kind = f"the {step} of {chain}", by_name[step].object
    last = path[-1]
    if last in by_name:
        return opener.replace("{kind}", kind).replace("{chain}", chain)
    return f"In what year was {chain} {years[kind]}?"
