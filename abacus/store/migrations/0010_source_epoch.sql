-- The broker epoch of the log each event was read from (abacus.kafka.broker_epoch): a new
-- embedded broker starts its offsets at 0 again, so (src_partition, src_offset) names a
-- record only together with the epoch. Rows stored before this migration keep ''.
ALTER TABLE {db}.events ADD COLUMN IF NOT EXISTS src_epoch LowCardinality(String) DEFAULT '' AFTER src_offset;
