"""Hypothesis strategies for hostile input: text aimed at SQL, paths and encodings, odd numbers, odd types."""

from hypothesis import strategies as st

SQL_PAYLOADS = [
    "' OR 1=1 --", "\" OR \"\"=\"", "k' || char(34)) IS NULL OR 1 OR json_extract(metadata, '$.k=1",
    "'; DROP TABLE cases; --", "$.a", "$[0]", "a\"b", "a'b", "%", "_", "a%25b", "a%2Fb", "*", "\\", "?",
]
PATHS = ["", ".", "..", "../..", "/", "a/b", "a/../b", "~", "C:\\x", "a\x00b", "\n", "\t", " "]

weird_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(SQL_PAYLOADS + PATHS),
    st.text(alphabet=st.characters(codec=None, categories=["Cs", "Cc", "Zs", "Mn", "So"]), max_size=8),
    st.builds(lambda n: "x" * n, st.sampled_from([199, 200, 201, 200_001])),
)
weird_number = st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**20, 10**20),
                         st.booleans(), st.sampled_from([0.0, 1.0, 0.5, -0.0, 1.0000001, -1e-300]))
odd_types = st.one_of(st.none(), st.lists(st.integers(), max_size=3), st.dictionaries(st.text(max_size=3), st.integers(),
                                                                                        max_size=2), st.binary(max_size=4))
any_value = st.one_of(weird_text, weird_number, odd_types)

label = st.one_of(weird_text, st.sampled_from(["acme", "team", "ünïcødé", "日本", "a.b", "a-b"]))
namespace = st.one_of(
    weird_text,
    st.lists(label, min_size=0, max_size=4).map(tuple),
    st.lists(label, min_size=17, max_size=18).map(tuple),
    odd_types,
)
metadata = st.dictionaries(st.one_of(weird_text, st.sampled_from(["dataset", "judge_v2"])),
                           st.recursive(any_value, lambda inner: st.lists(inner, max_size=2), max_leaves=4), max_size=3)
