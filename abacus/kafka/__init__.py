"""Kafka helpers used outside the worker: topic creation, compacted-topic I/O, export requests."""
