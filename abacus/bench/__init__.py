"""Benchmarks that run their baseline in the same run and print the ratio (README, Performance)."""
