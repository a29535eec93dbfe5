"""The public API is exactly `__all__` (as httpx does it): no accidental exports, nothing missing."""

import memento


def test_all_names_exist_and_are_public():
    assert sorted(memento.__all__) == sorted(set(memento.__all__))
    for name in memento.__all__:
        assert hasattr(memento, name), name
    public = {n for n in vars(memento) if not n.startswith("_")}
    modules = {n for n in public if type(getattr(memento, n)).__name__ == "module"}
    assert public - modules == set(memento.__all__)


def test_every_error_derives_from_one_base():
    from memento import errors

    classes = [v for v in vars(errors).values() if isinstance(v, type) and issubclass(v, Exception)]
    assert all(issubclass(c, errors.MementoError) for c in classes)
    for cls in classes:  # each appears in the tree drawn in the module docstring
        assert cls.__name__ in errors.__doc__, cls.__name__
