"""Benchmarks that run their baseline in the same run and print the ratio (DESIGN.md §10)."""
