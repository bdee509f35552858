"""Benchmarks of the engine: throughput and memory suites, FLOP counts, host facts."""
