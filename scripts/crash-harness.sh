#!/usr/bin/env bash
# Long runs of the crash harness (tests/processes/crash.rs): the deployment as
# separate processes on PostgreSQL, jobs submitted while workers of every phase
# and the projector are SIGKILLed at random moments, then the proofs (every job
# succeeded, exactly one completion per phase and one JobSucceeded per job on
# sprocket.events read_committed, archives as their manifests say, projections
# equal to a from-scratch rebuild). CI runs the same test at a modest size.
#
#   scripts/crash-harness.sh [JOBS] [KILLS] [ROUNDS]     (defaults 40 60 3)
#
# Each round uses a fresh seed (SPROCKET_CRASH_SEED=... repeats one) and writes
# its report to target/crash-reports/<round>.json; a failing round stops the
# run with the processes' logs. With FAULTS=1 the fault harness
# (tests/processes/faults.rs) runs after the rounds.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=${1:-40}
kills=${2:-60}
rounds=${3:-3}

bash .ci/setup >/dev/null
cargo build -p sprocket --bin sprocket
mkdir -p target/crash-reports
for round in $(seq 1 "$rounds"); do
  report="target/crash-reports/round-$round.json"
  echo "crash harness round $round/$rounds: $jobs jobs, $kills kills"
  SPROCKET_CRASH_JOBS=$jobs SPROCKET_CRASH_KILLS=$kills SPROCKET_CRASH_REPORT=$report \
    cargo test -p sprocket-tests --test processes crash_harness -- --nocapture
  cat "$report"
done
if [ "${FAULTS:-0}" = 1 ]; then
  SPROCKET_FAULTS_REPORT=target/crash-reports/faults.json \
    cargo test -p sprocket-tests --test processes faults_harness -- --nocapture
  cat target/crash-reports/faults.json
fi
