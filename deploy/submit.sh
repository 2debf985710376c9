#!/usr/bin/env bash
# Submits one labeling run to a running Ray cluster and waits for it; exits non-zero if it failed.
#   RAY_ADDRESS=http://HEAD:8265 deploy/submit.sh [DATE] [key=value ...]
# DATE (run.date) defaults to yesterday, UTC. A nightly crontab line:
#   15 2 * * *  cd /opt/hammer-labeling && RAY_ADDRESS=http://head:8265 deploy/submit.sh >>/var/log/labeling.log 2>&1
# The other settings come from conf/prod.yaml and key=value arguments, e.g.
#   input.path='s3://bucket/shards/dt=${run.date}/' output.path='s3://bucket/labels/dt=${run.date}/'
# Rerunning a date resumes it, or does nothing if it finished.
set -euo pipefail
cd "$(dirname "$0")/.."
date="${1:-$(date -u -d yesterday +%F)}"
[ $# -gt 0 ] && shift
exec ray job submit --working-dir . --runtime-env deploy/runtime_env.yaml \
    --submission-id "hammer-labeling-${date}-$(date -u +%H%M%S)" \
    -- python jobs/label.py "conf=${LABEL_CONF:-prod}" "run.date=${date}" "$@"
