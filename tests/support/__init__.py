"""Helpers of the programs that drive a whole system: the tests, and the benchmarks and
chaos runs (``bench/`` and ``chaos/`` import them too, as the tests import those): ports
for servers started later, waits for a server's health, a cut-and-restore TCP proxy, and
the test suite's own operations, fixtures' data and fakes."""
