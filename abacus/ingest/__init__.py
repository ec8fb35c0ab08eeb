"""The pure ingest pipeline an ingest process runs: Kafka records in, Native blocks out."""
