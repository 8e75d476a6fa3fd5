"""Benchmarks, run by `make bench` (scripts/bench); results in bench/results/."""
