"""The offline task suite: an invented world rendered as passages, with multi-hop questions about it.

`build_world(seed)` invents countries, cities, people, companies and inventions, links them by
relations (born_in, located_in, married_to, founded_by, ceo, headquartered_in, invented_by,
founded_in) and writes each fact into a short Wikipedia-like passage, beside distractor passages
that name the same entities with other cities and years. Every name is made up, so no model knows
an answer from pretraining: it has to search the corpus. Questions come in a handful of *shapes*;
all questions of one shape need the same search plan (find the company's founder, then where the
founder was born), which is what an agent's memory of past cases can teach.

Everything derives from the seed: the same seed gives the same passages and questions.

    world = build_world(seed=0)
    world.write_corpus_jsonl("runs/fictional/corpus.jsonl")   # index it with the search tool
    tasks = world.tasks(30, seed=1, split="train")
"""

from __future__ import annotations

import gzip
import json
import random
import re
from dataclasses import dataclass, field
from pathlib import Path

from envs.metrics import em_f1
from envs.task import Task, select
from memento.errors import ValidationError

SHAPES: dict[str, str] = {
    "founder_birthplace": "In which city was the founder of {0} born?",
    "inventor_spouse": "Who is the spouse of the inventor of the {0}?",
    "spouse_birthplace": "In which city was the spouse of {0} born?",
    "hq_country": "In which country is {0} headquartered?",
    "ceo_birth_country": "In which country was the CEO of {0} born?",
    "earlier_founded": "Which company was founded earlier, {0} or {1}?",
}
"""Question shapes: name -> template over the anchor entities."""

TEST_FRACTION = 0.3
"""Share of each shape's questions held out as the 'test' split."""

_ONSETS = "b d f g h k l m n p r s t v z br dr kr st tr th".split()
_VOWELS = "a e i o u a e i o u ae ou".split()
_CODAS = ["", "", "n", "r", "l", "s", "m", "x", "nd", "rk"]
_OCCUPATIONS = "engineer chemist architect economist physician geologist botanist mathematician".split()
_INDUSTRIES = "shipping textile railway software brewing mining insurance aviation".split()
_COMPANY_SUFFIXES = "Dynamics Works Industries Systems Holdings Foundry Labs Motors".split()
_INVENTION_SUFFIXES = "scope graph meter phone lith tron".split()
_KINDS = "measuring instrument|weaving machine|signal lamp|water pump|calculating engine|printing press".split("|")
_CITY_FEATURES = "harbour|glass markets|old bridges|salt mines|spring festival|clock towers".split("|")


@dataclass
class Person:
    """An invented person; facts about them live in their own passage."""

    name: str
    pronoun: str
    birth_year: int
    birth_city: str
    occupation: str
    study_city: str
    spouse: str | None = None


@dataclass
class Company:
    """An invented company: founder, CEO, headquarters, founding year."""

    name: str
    industry: str
    founded_year: int
    founder: str
    ceo: str
    hq_city: str


@dataclass
class Invention:
    """An invented device and who invented it."""

    name: str
    kind: str
    year: int
    inventor: str


@dataclass
class World:
    """An invented world: its entities, the passages that describe them, and where each fact is written."""

    seed: int
    countries: dict[str, str]
    """Country -> its capital."""
    cities: dict[str, str]
    """City -> its country."""
    people: dict[str, Person]
    companies: dict[str, Company]
    inventions: dict[str, Invention]
    passages: list[dict[str, str]] = field(default_factory=list)
    """The corpus: {id, title, text} dicts, the same form as the shared wiki_passages.jsonl.gz."""
    fact_passage: dict[tuple[str, str], str] = field(default_factory=dict)
    """(subject, relation) -> id of the passage that states it."""

    def tasks(self, n: int | None = None, seed: int = 0, shapes: list[str] | None = None, split: str = "all") -> list[Task]:
        """`n` distinct questions (all when None), shapes taken in turn, drawn with `seed`.

        `split` is 'train', 'test' or 'all'; train and test never share a question.
        """
        shapes = list(SHAPES) if shapes is None else shapes
        unknown = [shape for shape in shapes if shape not in SHAPES]
        if unknown or split not in ("all", "train", "test"):
            raise ValidationError(
                f"shapes {unknown} must be among {list(SHAPES)} and split {split!r} one of 'all', 'train', 'test'"
            )
        pools = [[task for task in self._candidates(shape) if split in ("all", task.split)] for shape in shapes]
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

    def _candidates(self, shape: str) -> list[Task]:
        """Every question of one shape, each assigned to train or test by a seeded shuffle."""
        chains = list(getattr(self, f"_chains_{shape}")())
        order = list(range(len(chains)))
        random.Random(f"{self.seed}/split/{shape}").shuffle(order)
        held_out = set(order[: round(len(chains) * TEST_FRACTION)])
        return [
            self._task(shape, anchors, hops, "test" if number in held_out else "train")
            for number, (anchors, hops) in enumerate(chains)
        ]

    def _task(self, shape: str, anchors: tuple[str, ...], hops: list[tuple[str, str, str]], split: str) -> Task:
        if shape == "earlier_founded":
            answer = min(anchors, key=lambda name: self.companies[name].founded_year)
        else:
            answer = hops[-1][2]
        slug = "-".join(re.sub(r"[^a-z0-9]+", "-", anchor.lower()).strip("-") for anchor in anchors)
        return Task(
            id=f"fictional-{self.seed}-{shape}-{slug}",
            question=SHAPES[shape].format(*anchors),
            gold=[answer],
            benchmark="fictional",
            source="fictional",
            split=split,
            metadata={
                "shape": shape,
                "world_seed": self.seed,
                "hops": [
                    {"subject": subject, "relation": relation, "object": value,
                     "passage_id": self.fact_passage[subject, relation]}
                    for subject, relation, value in hops
                ],
            },
        )

    def _chains_founder_birthplace(self):
        for company in self.companies.values():
            yield (company.name,), [(company.name, "founded_by", company.founder), self._born(company.founder)]

    def _chains_inventor_spouse(self):
        for invention in self.inventions.values():
            inventor = invention.inventor
            if self.people[inventor].spouse:
                yield (invention.name,), [(invention.name, "invented_by", inventor), self._married(inventor)]

    def _chains_spouse_birthplace(self):
        for person in self.people.values():
            if person.spouse:
                yield (person.name,), [self._married(person.name), self._born(person.spouse)]

    def _chains_hq_country(self):
        for company in self.companies.values():
            city = company.hq_city
            yield (company.name,), [(company.name, "headquartered_in", city), self._located(city)]

    def _chains_ceo_birth_country(self):
        for company in self.companies.values():
            city = self.people[company.ceo].birth_city
            yield (company.name,), [(company.name, "ceo", company.ceo), self._born(company.ceo), self._located(city)]

    def _chains_earlier_founded(self):
        # Each company against the next one in the list: one comparison per company, not all pairs.
        names = list(self.companies)
        for first, second in zip(names, names[1:] + names[:1]):
            years = {name: self.companies[name].founded_year for name in (first, second)}
            if years[first] != years[second]:
                yield (first, second), [(name, "founded_in", str(year)) for name, year in years.items()]

    def _born(self, person: str) -> tuple[str, str, str]:
        return person, "born_in", self.people[person].birth_city

    def _married(self, person: str) -> tuple[str, str, str]:
        return person, "married_to", self.people[person].spouse or ""

    def _located(self, city: str) -> tuple[str, str, str]:
        return city, "located_in", self.cities[city]


class _Namer:
    """Short made-up words from syllables; no word is made twice, so every name is unambiguous."""

    def __init__(self, rng: random.Random):
        self.rng, self.used = rng, set()

    def fresh(self, suffix: str = "", syllables: int = 2, coda: bool = True) -> str:
        while True:
            word = "".join(self.rng.choice(_ONSETS) + self.rng.choice(_VOWELS) for _ in range(syllables))
            word = (word + (self.rng.choice(_CODAS) if coda else "") + suffix).capitalize()
            if word not in self.used:
                self.used.add(word)
                return word

    def given(self, female: bool) -> str:
        endings = ["a", "ine", "ela", "is"] if female else ["o", "an", "ek", "us"]
        return self.fresh(suffix=self.rng.choice(endings), syllables=1)


def build_world(seed: int = 0, n_entities: int = 120) -> World:
    """Invent a world of about `n_entities` entities (at least 40) and render its passages."""
    if n_entities < 40:
        raise ValidationError(f"n_entities={n_entities} is too small; use at least 40 so every shape has questions")
    rng = random.Random(seed)
    names = _Namer(rng)
    n_countries, n_cities = max(3, n_entities // 30), max(6, n_entities // 6)
    n_companies = n_inventions = max(5, n_entities // 8)
    n_people = n_entities - n_countries - n_cities - n_companies - n_inventions

    country_names = [names.fresh(suffix=rng.choice(["ia", "land", "ora"]), coda=False) for _ in range(n_countries)]
    city_suffixes = ["", "ton", "burg", "mora", "vale", "port"]
    cities = {names.fresh(rng.choice(city_suffixes), coda=False): country_names[i % n_countries] for i in range(n_cities)}
    city_names = list(cities)
    countries = {country: next(city for city in city_names if cities[city] == country) for country in country_names}

    # Few surnames and given names, so relatives and namesakes share words, as real names do.
    surnames = [names.fresh() for _ in range(max(3, n_people // 3))]
    given_names = {female: [names.given(female) for _ in range(max(3, n_people // 4))] for female in (True, False)}
    people: dict[str, Person] = {}
    while len(people) < n_people:
        female = rng.random() < 0.5
        name = f"{rng.choice(given_names[female])} {rng.choice(surnames)}"
        if name in people:
            continue
        birth_city, study_city = rng.sample(city_names, 2)
        pronoun, year, occupation = "She" if female else "He", rng.randint(1900, 1975), rng.choice(_OCCUPATIONS)
        people[name] = Person(name, pronoun, year, birth_city, occupation, study_city)
    person_names = list(people)
    married = rng.sample(person_names, 2 * (len(person_names) * 3 // 10))
    for husband_or_wife, partner in zip(married[::2], married[1::2]):
        people[husband_or_wife].spouse, people[partner].spouse = partner, husband_or_wife

    # Founders, CEOs and inventors are drawn without repeats so every "the X of Y" names one person.
    founders = rng.sample(person_names, n_companies)
    ceos = rng.sample([name for name in person_names if name not in founders], n_companies)
    companies = {}
    for founder, ceo in zip(founders, ceos):
        name = f"{names.fresh()} {rng.choice(_COMPANY_SUFFIXES)}"
        year = people[founder].birth_year + rng.randint(24, 50)
        companies[name] = Company(name, rng.choice(_INDUSTRIES), year, founder, ceo, rng.choice(city_names))
    inventions = {}
    for inventor in rng.sample(person_names, n_inventions):
        name = names.fresh(suffix=rng.choice(_INVENTION_SUFFIXES), coda=False)
        year = people[inventor].birth_year + rng.randint(22, 48)
        inventions[name] = Invention(name, rng.choice(_KINDS), year, inventor)

    world = World(seed, countries, cities, people, companies, inventions)
    _render(world, rng)
    return world


def _render(world: World, rng: random.Random) -> None:
    """Write the passages: each fact once, in its subject's passage, plus distractors."""
    passages = world.passages

    def add(title: str, text: str, facts: tuple[tuple[str, str], ...] = ()) -> None:
        passage_id = f"fw{world.seed}-{len(passages):04d}"
        passages.append({"id": passage_id, "title": title, "text": text})
        for subject, relation in facts:
            world.fact_passage[subject, relation] = passage_id

    cities = list(world.cities)
    for country, capital in world.countries.items():
        add(country, f"{country} is a country whose capital is {capital}.")
    for city, country in world.cities.items():
        add(city, f"{city} is a city in {country}, known for its {rng.choice(_CITY_FEATURES)}.", ((city, "located_in"),))
    for person in world.people.values():
        text = f"{person.name} (born {person.birth_year}) is a {person.occupation} who was born in {person.birth_city}."
        text += f" {person.pronoun} studied at the university of {person.study_city}."
        if person.spouse:
            text += f" {person.pronoun} is married to {person.spouse}."
        add(person.name, text, ((person.name, "born_in"),) + (((person.name, "married_to"),) if person.spouse else ()))
        if rng.random() < 0.5:
            year, places = person.birth_year + rng.randint(30, 50), " and ".join(rng.sample(cities, 2))
            add(person.name, f"In {year}, {person.name} gave a lecture tour through {places}.")
    for company in world.companies.values():
        name = company.name
        add(name, f"{name} is a {company.industry} company. It was founded in {company.founded_year} by {company.founder}.",
            ((name, "founded_by"), (name, "founded_in")))
        add(name, f"{name} is headquartered in {company.hq_city}. Its chief executive officer (CEO) is {company.ceo}.",
            ((name, "headquartered_in"), (name, "ceo")))
        year, other = company.founded_year + rng.randint(5, 30), rng.choice([c for c in cities if c != company.hq_city])
        add(name, f"In {year}, {name} opened a branch office in {other}.")
    for invention in world.inventions.values():
        name = invention.name
        add(name, f"The {name} is a {invention.kind} invented by {invention.inventor} in {invention.year}.",
            ((name, "invented_by"),))
        add(name, f"The {name} was first shown to the public at a fair in {rng.choice(cities)}.")


def load_fictional(
    path: None = None,
    *,
    limit: int | None = None,
    seed: int = 0,
    world_seed: int = 0,
    n_entities: int = 120,
    shapes: list[str] | None = None,
    split: str = "all",
) -> list[Task]:
    """Questions about the world built from `world_seed`; `seed` draws which ones. No file needed."""
    if path is not None:
        raise ValidationError(
            f"the fictional suite is generated, not read: got path={str(path)!r}; pass world_seed= instead"
        )
    return build_world(world_seed, n_entities).tasks(limit, seed=seed, shapes=shapes, split=split)


def score(task: Task, prediction: str | None) -> dict[str, float]:
    """{"em", "f1"} against the invented answer."""
    return em_f1(prediction, task.gold)
