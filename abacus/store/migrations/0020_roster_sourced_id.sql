-- The OneRoster sourcedId of users and students imported from a OneRoster package (empty for
-- rows from the upload document's files): the durable half of the sourcedId <-> identifier
-- map, so it survives a broker that forgets its topics. Added at the end of both student
-- tables, so roster_students_history keeps roster_students' column order.
ALTER TABLE {db}.roster_students ADD COLUMN IF NOT EXISTS sourced_id String DEFAULT '';
ALTER TABLE {db}.roster_students_history ADD COLUMN IF NOT EXISTS sourced_id String DEFAULT '';
ALTER TABLE {db}.roster_users ADD COLUMN IF NOT EXISTS sourced_id String DEFAULT '';
