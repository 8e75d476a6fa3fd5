"""Waiting for something a worker or a server does in another process."""

import time


def wait_for(predicate, timeout=60.0, interval=0.2) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass; the last answer is the result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
