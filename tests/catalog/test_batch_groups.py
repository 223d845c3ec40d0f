"""batch_groups forms the batches of SQLite imports and classifier runs (PostgreSQL imports form them in SQL)."""

from labelqa.catalog.services import batch_groups

ITEMS = [("A", i) for i in range(60)] + [("B", i) for i in range(3)]


def groups(seed: int) -> list[tuple[str, list]]:
    return batch_groups(ITEMS, key=lambda item: item[0], size=25, seed=seed)


def test_each_label_is_cut_into_full_batches_and_a_rest():
    assert [(label, len(members)) for label, members in groups(7)] == [("A", 25), ("A", 25), ("A", 10), ("B", 3)]
    assert all({item[0] for item in members} == {label} for label, members in groups(7))
    assert sorted(item for _, members in groups(7) for item in members) == sorted(ITEMS)


def test_the_members_are_shuffled_with_the_datasets_seed():
    order = [item for label, members in groups(7) if label == "A" for item in members]
    assert order != sorted(order), "a batch should mix confidence levels, not follow the file's order"
    assert groups(7) == groups(7)
    assert groups(7) != groups(8)
