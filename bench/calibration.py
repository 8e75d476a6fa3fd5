"""The machine's speed at the start of a run, recorded in every results file.

These machines differ 3-4x in speed from one day to the next: a figure is
read beside `calibration_s`, the seconds CPython takes to add the integers of
range(10_000_000) in a loop, best of 3.
"""

import time


def calibration_s() -> float:
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        total = 0
        for i in range(10_000_000):
            total += i
        best = min(best, time.perf_counter() - start)
    return round(best, 3)
