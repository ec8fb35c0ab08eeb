"""Kafka helpers: topic creation, compacted-topic I/O, export requests, the true log end."""
