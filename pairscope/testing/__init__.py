"""Helpers that the test suite and the benchmarks share (real processes, keys, a small network
over the REST API). The service never imports them."""
