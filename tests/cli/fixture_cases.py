"""The cases every CLI test bank starts with: two namespaces of Acme questions, rivers, and an old failure."""

CASES = [
    {"id": "acme-1", "namespace": "acme", "task": "Who founded the Acme company?", "answer": "Ada Vell",
     "reward": 1.0, "metadata": {"dataset": "hotpotqa"}, "plan": ["search Acme founder"],
     "trajectory": [{"thought": "look it up", "tool": "search", "tool_input": "Acme founder", "observation": "Ada Vell founded Acme"}]},
    {"id": "acme-2", "namespace": "acme", "task": "Who founded the Acme company?", "answer": "Bo Rand",
     "reward": 0.0, "metadata": {"dataset": "hotpotqa", "judge": "broken"}},
    {"id": "acme-3", "namespace": "acme", "task": "In which city is the Acme company based?", "answer": "Dunmere",
     "reward": 1.0, "metadata": {"dataset": "hotpotqa"}},
    {"id": "river-1", "task": "Which river flows through Dunmere?", "answer": "the Lune", "reward": 1.0,
     "metadata": {"dataset": "simpleqa"}},
    {"id": "river-2", "task": "How long is the river Lune?", "answer": "105 km", "reward": 0.5,
     "metadata": {"dataset": "simpleqa", "judge": "broken"}},
    {"id": "moss-1", "namespace": "globex", "task": "Who is the spouse of Cara Moss?", "answer": "Eli Moss",
     "reward": 0.0, "created_at": "2024-01-01T00:00:00+00:00", "updated_at": "2024-01-01T00:00:00+00:00",
     "metadata": {"dataset": "simpleqa"}},
]
