"""core.batches.batched: any iterable, in order, in lists of at most the size asked."""

from core.batches import batched


def test_batches_keep_the_order_and_the_last_one_holds_the_rest():
    assert list(batched(range(7), 3)) == [[0, 1, 2], [3, 4, 5], [6]]
    assert list(batched(iter("abcd"), 2)) == [["a", "b"], ["c", "d"]]
    assert list(batched([], 5)) == []


def test_work_for_runs_a_jobs_batches_until_it_is_done_or_its_time_is_up():
    from core.batches import work_for

    left = [3]

    def step():
        left[0] -= 1
        return left[0] > 0

    assert work_for(60, step) is False and left == [0]  # done: nothing to hand on
    left[0] = 3
    assert work_for(0, step) is True and left == [2]  # time up after one batch: the rest goes to a new task
