"""A small, fixed set of general text and general questions that distilled data never touches.

Two uses, kept apart so that nothing trained on is ever measured: `REPLAY_PASSAGES` are mixed into
training batches (general replay, as in GeRe) and `PROBE_PASSAGES` + `GENERAL_QA` are the
general-ability probe of the gate. Plain public knowledge, written for this package, so the tests
and `memento distill run` work offline without any corpus. `evals/distill_check.py` uses passages
of the shared Wikipedia corpus instead when it is present.
"""

from __future__ import annotations

from dataclasses import dataclass

REPLAY_PASSAGES: tuple[str, ...] = (
    "Water boils at 100 degrees Celsius at sea level and freezes at 0 degrees Celsius.",
    "The Earth orbits the Sun once every year, and the Moon orbits the Earth about once a month.",
    "Photosynthesis lets plants turn sunlight, water and carbon dioxide into sugar and oxygen.",
    "The Pacific is the largest and deepest of the Earth's oceans.",
    "A week has seven days, and most years have three hundred and sixty-five days.",
    "The human heart pumps blood through the body, carrying oxygen to every organ.",
    "Mount Everest, on the border of Nepal and China, is the highest mountain above sea level.",
    "Light travels much faster than sound, which is why lightning is seen before thunder is heard.",
    "Bees collect nectar from flowers and turn it into honey inside their hives.",
    "The Nile and the Amazon are the two longest rivers in the world.",
    "A triangle has three sides, a square has four, and a hexagon has six.",
    "Iron rusts when it is exposed to water and oxygen for a long time.",
    "The Great Wall of China was built over many centuries to protect against invasions.",
    "Penguins are birds that cannot fly, but they are excellent swimmers.",
    "The alphabet used for English has twenty-six letters, from A to Z.",
    "Gold is a soft, heavy metal that does not rust and has been used for coins and jewellery.",
    "Rain forms when water vapour in clouds cools and condenses into drops.",
    "Shakespeare wrote plays such as Hamlet, Macbeth and Romeo and Juliet.",
    "A compass needle points north because it lines up with the Earth's magnetic field.",
    "Volcanoes erupt when molten rock from deep below the surface forces its way up.",
)
"""General text mixed into training batches (replay); never part of the probe."""

PROBE_PASSAGES: tuple[str, ...] = (
    "The Sun is a star at the centre of our solar system, and its light reaches the Earth in about eight minutes.",
    "Paris is the capital of France and is known for the Eiffel Tower, built in 1889.",
    "Ice is less dense than liquid water, so it floats on lakes and oceans.",
    "The piano has eighty-eight keys, some white and some black.",
    "Honey never spoils easily because it holds very little water and is slightly acidic.",
    "Africa is the second largest continent, after Asia, both in area and in population.",
    "A leap year has three hundred and sixty-six days, with an extra day added to February.",
    "Sound cannot travel through the vacuum of space, because there is no air to carry it.",
    "The Romans built roads, aqueducts and bridges across their empire, and many still stand.",
    "Cats are small carnivorous mammals that people have kept as pets for thousands of years.",
    "The chemical symbol for water is H2O: two hydrogen atoms bound to one oxygen atom.",
    "Tokyo is the capital of Japan and one of the most populous cities in the world.",
    "Trees grow a new ring of wood each year, so counting the rings tells a tree's age.",
    "The Atlantic Ocean lies between the Americas on one side and Europe and Africa on the other.",
    "A spider has eight legs, while an insect such as an ant has six.",
    "Electric current flows easily through copper, which is why it is used in wires.",
    "The Moon has no light of its own; it shines by reflecting the light of the Sun.",
    "Mozart was an Austrian composer who wrote his first pieces of music as a small child.",
    "Snow is made of ice crystals, and no two snowflakes are believed to be exactly alike.",
    "The Sahara in northern Africa is the largest hot desert in the world.",
)
"""Held-out general text for the perplexity probe; never trained on."""


@dataclass(frozen=True)
class GeneralQuestion:
    """A simple question with its known answer(s), for the general-ability probe."""

    question: str
    answers: tuple[str, ...]


GENERAL_QA: tuple[GeneralQuestion, ...] = tuple(GeneralQuestion(q, tuple(a.split("|"))) for q, a in (
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Japan?", "Tokyo"),
    ("What is the capital of Italy?", "Rome"),
    ("What is the capital of Germany?", "Berlin"),
    ("What is the capital of Spain?", "Madrid"),
    ("What is the capital of the United Kingdom?", "London"),
    ("How many days are there in a week?", "seven|7"),
    ("How many legs does a spider have?", "eight|8"),
    ("How many sides does a triangle have?", "three|3"),
    ("How many continents are there on Earth?", "seven|7"),
    ("What colour is the sky on a clear day?", "blue"),
    ("What colour are ripe bananas?", "yellow"),
    ("What is the largest planet in our solar system?", "Jupiter"),
    ("Which planet is known as the Red Planet?", "Mars"),
    ("What is the closest star to the Earth?", "the Sun|Sun"),
    ("What gas do plants absorb from the air?", "carbon dioxide|CO2"),
    ("What do bees make?", "honey"),
    ("What is frozen water called?", "ice"),
    ("Who wrote Romeo and Juliet?", "William Shakespeare|Shakespeare"),
    ("What is the chemical symbol for gold?", "Au"),
    ("What is the chemical formula of water?", "H2O"),
    ("What is 2 plus 2?", "four|4"),
    ("What is 10 minus 3?", "seven|7"),
    ("What is 5 times 3?", "fifteen|15"),
    ("Which ocean is the largest?", "the Pacific Ocean|Pacific"),
    ("Which animal is known as the king of the jungle?", "the lion|lion"),
    ("What is the opposite of hot?", "cold"),
    ("What language is mainly spoken in Brazil?", "Portuguese"),
    ("In which country are the pyramids of Giza?", "Egypt"),
    ("How many hours are there in a day?", "twenty-four|24"),
))
"""Thirty general questions with known answers; a reply is right when it contains one of them."""
