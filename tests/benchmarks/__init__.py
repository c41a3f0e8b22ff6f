"""Benchmarks: run with ``make bench`` or ``python -m tests.benchmarks.<name>``; never collected
by pytest (their file names do not start with ``test_``)."""
