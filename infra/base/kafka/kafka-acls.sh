#!/usr/bin/env bash
# Sprocket's Kafka principals and their least-privilege ACLs, for a cluster
# whose authorizer denies what no ACL allows (`kafka.sh start DIR --sasl`, or
# any Kafka with SASL and an authorizer). Run it as a super user; it only adds
# (SCRAM credentials and ACLs alike), so running it again changes nothing.
# scripts/kafka-acls.sh links to this file, which Kubernetes' setup Job runs
# (infra/base/setup-job.yaml).
#
#   scripts/kafka-acls.sh [--bootstrap-server HOST:PORT] [--command-config FILE]
#                         [--topic-prefix PREFIX] [--user-prefix PREFIX]
#                         [--passwords DIR] [--print]
#
#   --bootstrap-server  default $SPROCKET__KAFKA__BROKERS
#   --command-config    Kafka client properties of a super user (security.protocol,
#                       sasl.mechanism, sasl.jaas.config, TLS); kafka.sh start --sasl
#                       writes DIR/admin.properties
#   --topic-prefix      Sprocket's topic prefix (default $SPROCKET__KAFKA__TOPIC_PREFIX,
#                       else `sprocket.`); groups and transactional ids follow it
#                       as Sprocket names them (`sprocket-<phase>` for `sprocket.`)
#   --user-prefix       prepended to every principal's name (e.g. `staging-`),
#                       so environments sharing a cluster have their own
#   --passwords DIR     make (or reset) a SCRAM-SHA-512 credential for each role
#                       that has a file DIR/<role> holding its password (letters,
#                       digits and ._~+/- only); roles without one only get ACLs
#   --print             print the ACLs, one line per role and resource set, and
#                       touch nothing
#
# The roles (principal User:<user-prefix><role>), read from the code that makes
# each client (engine/platform/src/bus.rs, workers/src/ports/kafka.rs, …):
#   api        writes submissions, redriven work items, cancellations and their
#              events; reads the phase and retry topics for the age of the oldest
#              waiting item (group <stem>-lag-probe) and the phase groups' offsets;
#              writes stored recipes to sprocket.recipes and follows that topic
#              (groups <stem>-recipes-*)
#   projector  reads sprocket.events and the intake (group <stem>-projector)
#   ingest, analyze, render, archive
#              each reads its phase and retry topics in group <stem>-<phase> and
#              sprocket.cancellations (groups <stem>-cancel-watch-*), writes its
#              events, its retry and dead-letter topics and the phase topics after
#              it, in transactions with ids <stem>-<phase>-<topic>-<partition>;
#              ingest also follows sprocket.recipes (groups <stem>-recipes-*) to
#              resolve submissions naming a stored recipe
#   webhooks   `sprocket webhooks`: reads sprocket.events (group <stem>-webhooks)
#              and the deliveries on sprocket.webhooks (group <stem>-webhook-sender),
#              writes deliveries and retries to sprocket.webhooks and dead letters
#              to sprocket.webhooks.dlq
#   janitor    `sprocket janitor`: records what retention deleted on
#              sprocket.events, in transactions with ids <stem>-janitor*;
#              reads nothing from Kafka
#   ops        `sprocket topics create` (create and describe Sprocket's topics and
#              their configs) and `sprocket dlq list` (group <stem>-dlq-reader)
#   keda       KEDA's Kafka scaler: the phase groups' offsets and the end offsets
#              of the phase and retry topics
#   submitter  an outside producer submitting jobs straight onto the intake
#              (JobSubmitted on sprocket.ingest), and nothing else
# No role gets a cluster-wide right: an idempotent producer needs Write on one
# topic (Kafka ≥ 3.0), not IdempotentWrite.
#
# Kafka's tools come from $KAFKA_BIN (a Kafka distribution's bin/, e.g.
# /opt/kafka/bin in the apache/kafka image), else from scripts/kafka.sh's jars.
# KAFKA_ACLS_JOBS tools run at once (default 3).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
PHASES=(ingest analyze render archive)
ROLES=(api projector "${PHASES[@]}" webhooks janitor ops keda submitter)

die() { echo "kafka-acls.sh: $*" >&2; exit 1; }

bootstrap=${SPROCKET__KAFKA__BROKERS:-}
command_config=""
prefix=${SPROCKET__KAFKA__TOPIC_PREFIX:-sprocket.}
user_prefix=""
passwords=""
print=""
while [ $# -gt 0 ]; do
  case "$1" in
    --bootstrap-server) bootstrap=${2:?}; shift 2 ;;
    --command-config) command_config=${2:?}; shift 2 ;;
    --topic-prefix) prefix=${2?}; shift 2 ;;
    --user-prefix) user_prefix=${2?}; shift 2 ;;
    --passwords) passwords=${2:?}; shift 2 ;;
    --print) print=1; shift ;;
    -h | --help) sed -n '2,53p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ "$prefix" =~ ^[A-Za-z0-9._-]*$ ]] || die "topic prefix $prefix: use letters, digits, '.', '_', '-'"
[[ "$user_prefix" =~ ^[A-Za-z0-9._-]*$ ]] || die "user prefix $user_prefix: use letters, digits, '.', '_', '-'"

# Groups and transactional ids as Topics::named makes them: the prefix without
# its trailing '.', '-' and '_' (`sprocket` if nothing is left), a dash, a name.
stem=$prefix
while [[ "$stem" == *[._-] ]]; do stem=${stem%?}; done
stem=${stem:-sprocket}

# Topics a phase's next work item may go to: the phases after it (a recipe
# runs phases in pipeline order, each at most once, and may skip some).
after() {
  local seen="" p
  for p in "${PHASES[@]}"; do
    [ -n "$seen" ] && echo "$p"
    [ "$p" = "$1" ] && seen=1
  done
}

# The plan: one line per kafka-acls call,
#   ROLE PATTERN OPERATIONS RESOURCE...
# with OPERATIONS comma separated and each RESOURCE as topic:NAME, group:NAME
# or txn:NAME (a transactional id).
plan() {
  local p t phase topics=() work=() retry=() dlq=()
  for phase in "${PHASES[@]}"; do
    work+=("topic:$prefix$phase")
    retry+=("topic:$prefix$phase.retry")
    dlq+=("topic:$prefix$phase.dlq")
  done
  topics=("topic:${prefix}events" "topic:${prefix}cancellations" "${work[@]}" "${retry[@]}" "${dlq[@]}"
    "topic:${prefix}webhooks" "topic:${prefix}webhooks.dlq" "topic:${prefix}recipes")

  # The API: POST /v1/jobs (the intake), /retry (JobRedriven + the phase's work
  # item), /cancel (sprocket.cancellations + sprocket.events); GET /v1/phases
  # (the lag probe: offsets of the phase groups, a peek at the oldest waiting
  # message of each phase and retry topic).
  # PUT /v1/recipes/{name} writes sprocket.recipes; the API follows it from
  # its beginning (assigned, in a group of its own per process).
  echo "api literal Write ${work[*]} topic:${prefix}events topic:${prefix}cancellations topic:${prefix}recipes"
  echo "api literal Read ${work[*]} ${retry[*]} topic:${prefix}recipes group:$stem-lag-probe"
  echo "api prefixed Read group:$stem-recipes-"
  echo "api literal Describe $(for phase in "${PHASES[@]}"; do printf 'group:%s ' "$stem-$phase"; done)"

  # The projector: sprocket.events and the intake, assigned (no Kafka commits).
  echo "projector literal Read topic:${prefix}events topic:${prefix}ingest group:$stem-projector"

  for phase in "${PHASES[@]}"; do
    local next=""
    for t in $(after "$phase"); do next+=" topic:$prefix$t"; done
    echo "$phase literal Read topic:$prefix$phase topic:$prefix$phase.retry topic:${prefix}cancellations group:$stem-$phase"
    echo "$phase literal Write topic:${prefix}events topic:$prefix$phase.retry topic:$prefix$phase.dlq$next"
    # Each process follows sprocket.cancellations in a group of its own.
    echo "$phase prefixed Read group:$stem-cancel-watch-"
    # transactional.id = <group>-<topic>-<partition>
    echo "$phase prefixed Write txn:$stem-$phase-"
  done
  # Ingest accepts submissions, which may name a stored recipe.
  echo "ingest literal Read topic:${prefix}recipes"
  echo "ingest prefixed Read group:$stem-recipes-"

  echo "webhooks literal Read topic:${prefix}events topic:${prefix}webhooks group:$stem-webhooks group:$stem-webhook-sender"
  echo "webhooks literal Write topic:${prefix}webhooks topic:${prefix}webhooks.dlq"

  # The janitor: its deletions on sprocket.events, transactionally.
  echo "janitor literal Write,Describe topic:${prefix}events"
  echo "janitor prefixed Write,Describe txn:$stem-janitor"

  echo "ops literal Create,Describe,DescribeConfigs ${topics[*]}"
  echo "ops literal Read ${dlq[*]} group:$stem-dlq-reader"

  echo "submitter literal Write topic:${prefix}ingest"

  echo "keda literal Describe ${work[*]} ${retry[*]} $(for phase in "${PHASES[@]}"; do printf 'group:%s ' "$stem-$phase"; done)"
}

if [ -n "$print" ]; then
  plan | while read -r role pattern ops resources; do
    printf 'User:%s\t%s\t%s\t%s\n' "$user_prefix$role" "$pattern" "$ops" "$resources"
  done
  exit 0
fi

[ -n "$bootstrap" ] || die "no --bootstrap-server (or SPROCKET__KAFKA__BROKERS)"
[ -n "$command_config" ] || die "no --command-config: the super user's client properties"
[ -r "$command_config" ] || die "cannot read $command_config"
if [ -n "$passwords" ]; then
  [ -d "$passwords" ] || die "--passwords $passwords is not a directory"
fi

tool() {
  local name=$1
  shift
  if [ -n "${KAFKA_BIN:-}" ]; then
    "$KAFKA_BIN/$name.sh" "$@"
  else
    bash "$HERE/kafka.sh" tool "$name" "$@"
  fi
}

# One kafka-acls --add call of the plan.
add_acls() {
  local role=$1 pattern=$2 ops=$3 args=() r op
  shift 3
  IFS=, read -r -a op <<<"$ops"
  for o in "${op[@]}"; do args+=(--operation "$o"); done
  for r in "$@"; do
    case "$r" in
      topic:*) args+=(--topic "${r#topic:}") ;;
      group:*) args+=(--group "${r#group:}") ;;
      txn:*) args+=(--transactional-id "${r#txn:}") ;;
      *) die "bad resource $r" ;;
    esac
  done
  tool kafka-acls --bootstrap-server "$bootstrap" --command-config "$command_config" \
    --add --allow-principal "User:$user_prefix$role" --resource-pattern-type "$pattern" "${args[@]}"
}

# A role's SCRAM-SHA-512 credential, from DIR/<role>.
add_user() {
  local role=$1 password
  password=$(tr -d '\r\n' <"$passwords/$role")
  [[ "$password" =~ ^[A-Za-z0-9._~+/-]+$ ]] ||
    die "$passwords/$role: a password of letters, digits and ._~+/- only"
  tool kafka-configs --bootstrap-server "$bootstrap" --command-config "$command_config" \
    --alter --entity-type users --entity-name "$user_prefix$role" \
    --add-config "SCRAM-SHA-512=[iterations=8192,password=$password]"
}

# Runs the queued commands, KAFKA_ACLS_JOBS at a time; each one's output goes
# to a log that is shown only when it fails.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
jobs_max=${KAFKA_ACLS_JOBS:-3}
pids=()
logs=()
names=()
failed=0
reap() {
  local pid=${pids[0]} log=${logs[0]} name=${names[0]}
  pids=("${pids[@]:1}")
  logs=("${logs[@]:1}")
  names=("${names[@]:1}")
  if ! wait "$pid"; then
    echo "kafka-acls.sh: $name failed:" >&2
    cat "$log" >&2
    failed=1
  fi
}
queue() {
  local name=$1 log
  shift
  log="$work/${#names[@]}-$RANDOM.log"
  "$@" >"$log" 2>&1 &
  pids+=("$!")
  logs+=("$log")
  names+=("$name")
  [ ${#pids[@]} -lt "$jobs_max" ] || reap
}

users=0
if [ -n "$passwords" ]; then
  for role in "${ROLES[@]}"; do
    if [ -f "$passwords/$role" ]; then
      queue "the SCRAM credential of $user_prefix$role" add_user "$role"
      users=$((users + 1))
    fi
  done
fi
sets=0
while read -r role pattern ops resources; do
  # shellcheck disable=SC2086 # resources are words
  queue "ACLs of $user_prefix$role ($pattern $ops $resources)" add_acls "$role" "$pattern" "$ops" $resources
  sets=$((sets + 1))
done < <(plan)
while [ ${#pids[@]} -gt 0 ]; do reap; done
[ "$failed" = 0 ] || die "some ACLs or credentials were not made (above)"
echo "kafka-acls.sh: $users SCRAM credentials and $sets ACL sets for ${#ROLES[@]} roles on $bootstrap (topic prefix $prefix)"
