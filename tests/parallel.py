"""Claims made from several threads at once, each on its own database connection."""

import threading


def claimed_in_parallel(claim, *, threads=4, rounds=5) -> list:
    """The ids `claim()` returns, called `rounds` times in each of `threads` threads started at once."""
    from django.db import connections

    claimed, barrier = [], threading.Barrier(threads)

    def run():
        try:
            barrier.wait()
            for _ in range(rounds):
                claimed.append(claim())
        finally:
            connections.close_all()

    started = [threading.Thread(target=run) for _ in range(threads)]
    for thread in started:
        thread.start()
    for thread in started:
        thread.join(60)
    return [pk for batch in claimed for pk in batch]
