"""core.batches.batched: any iterable, in order, in lists of at most the size asked."""

from core.batches import batched


def test_batches_keep_the_order_and_the_last_one_holds_the_rest():
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batched(iter("abcd"), 2)) == [["a", "b"], ["c", "d"]]
    assert list(batched([], 5)) == []
