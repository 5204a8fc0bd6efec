"""Performance benchmarks of ctrader-typed (``python -m benchmarks``; ``nox -s bench``).

Every figure is a ratio against a baseline measured side by side in the same run
(repetitions interleaved, median of each side), so the numbers compare code, not
machines. Nothing here is a test: nothing timed belongs in ``tests/``.
"""
