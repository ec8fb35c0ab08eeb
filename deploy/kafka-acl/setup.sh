#!/usr/bin/env bash
# Users and ACLs of the locked-down Kafka (docker-compose.secure.yml), run in the Kafka
# image as the `admin` super user over the BROKER listener (SASL PLAIN).
#   setup.sh check           the broker answers an authenticated admin (health check)
#   setup.sh users-and-acls  create/refresh the SCRAM users and their ACLs (idempotent)
# Topic names are the defaults (ABACUS_TOPICS__PREFIX empty); the worker's consumer
# groups start with its ABACUS_APP_ID, "abacus".
set -euo pipefail

BIN=/opt/kafka/bin
SERVER=${KAFKA_SETUP_SERVER:-kafka:9094}
ADMIN=$(mktemp)
trap 'rm -f "$ADMIN"' EXIT
cat >"$ADMIN" <<PROPERTIES
security.protocol=SASL_PLAINTEXT
sasl.mechanism=PLAIN
sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="admin" password="${ABACUS_KAFKA_ADMIN_PASSWORD}";
PROPERTIES

if [[ "${1:-}" == "check" ]]; then
  exec "$BIN/kafka-broker-api-versions.sh" --bootstrap-server localhost:9094 \
    --command-config "$ADMIN" >/dev/null
fi

# user NAME PASSWORD: a SCRAM-SHA-512 login for NAME
user() {
  "$BIN/kafka-configs.sh" --bootstrap-server "$SERVER" --command-config "$ADMIN" \
    --alter --entity-type users --entity-name "$1" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$2]"
}

# allow_topic NAME OPERATION TOPIC...: NAME may OPERATION (Read, Write, Create) each TOPIC
allow_topic() {
  local name=$1 operation=$2
  shift 2
  for topic in "$@"; do
    "$BIN/kafka-acls.sh" --bootstrap-server "$SERVER" --command-config "$ADMIN" --add \
      --allow-principal "User:$name" --operation "$operation" --topic "$topic"
  done
}

# allow_groups NAME OPERATION PREFIX: NAME may OPERATION consumer groups named PREFIX*
allow_groups() {
  "$BIN/kafka-acls.sh" --bootstrap-server "$SERVER" --command-config "$ADMIN" --add \
    --allow-principal "User:$1" --operation "$2" \
    --group "$3" --resource-pattern-type prefixed
}

[[ "${1:-}" == "users-and-acls" ]] || { echo "usage: setup.sh check|users-and-acls" >&2; exit 2; }

user abacus-worker "$ABACUS_KAFKA_WORKER_PASSWORD"
user abacus-ops "$ABACUS_KAFKA_OPS_PASSWORD"
user abacus-roster "$ABACUS_KAFKA_ROSTER_PASSWORD"
user learning-app "$ABACUS_KAFKA_APP_PASSWORD"

ALL_TOPICS=(events events-dlq export-requests export-status roster-users roster-students
  roster-teacher-students district-config roster-oneroster abacus-meta privacy-requests
  privacy-status privacy-deny)
ROSTER_TOPICS=(roster-users roster-students roster-teacher-students district-config)

# The worker (ingest, roster consumer and export agent, the portal, lag): creates its topics
# at start; stores the roster topics and the OneRoster importer's state (roster-oneroster);
# keeps the broker epoch on abacus-meta and, after an embedded broker restart, puts the
# roster topics, that state and dead letters back from ClickHouse.
allow_topic abacus-worker Create "${ALL_TOPICS[@]}"
allow_topic abacus-worker Read events export-requests "${ROSTER_TOPICS[@]}" roster-oneroster
allow_topic abacus-worker Read abacus-meta
allow_topic abacus-worker Write events-dlq export-status export-requests abacus-meta
allow_topic abacus-worker Write "${ROSTER_TOPICS[@]}" roster-oneroster
# Deletions: requests in; statuses, the deny-list, roster tombstones and rewritten OneRoster
# state buckets out (the worker reads the topics it tombstones).
allow_topic abacus-worker Read privacy-requests privacy-deny
allow_topic abacus-worker Write privacy-status privacy-deny
allow_groups abacus-worker Read abacus
allow_groups abacus-worker Describe abacus

# Operators' CLI: export and deletion requests and their status, lag, dead letters (replay
# writes events; list and replay read the deny-list to skip deleted students' records).
allow_topic abacus-ops Write export-requests events privacy-requests
allow_topic abacus-ops Read export-status events-dlq events abacus-meta privacy-status privacy-deny
allow_groups abacus-ops Describe abacus

# The roster importer reads the compacted topics back and publishes what changed; the
# OneRoster importer also keeps its sourcedId map on roster-oneroster.
allow_topic abacus-roster Read "${ROSTER_TOPICS[@]}" roster-oneroster abacus-meta
allow_topic abacus-roster Write "${ROSTER_TOPICS[@]}" roster-oneroster

# The learning app sends events and nothing else.
allow_topic learning-app Write events

echo "users and ACLs in place"
