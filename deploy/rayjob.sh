#!/usr/bin/env bash
# Creates one labeling RayJob (deploy/rayjob.yaml) for a partition date; prints the created name.
#   deploy/rayjob.sh [DATE]            # DATE defaults to yesterday, UTC
#   RAYJOB_DRY_RUN=1 deploy/rayjob.sh 2026-11-24   # print the manifest instead of creating it
# The date is fixed here, at creation: KubeRay's retries of this RayJob label the same partition.
set -euo pipefail
cd "$(dirname "$0")/.."
date="${1:-$(date -u -d yesterday +%F)}"
# It goes into the RayJob's name and a label: lowercase letters, digits, '.' and '-' only.
if ! [[ "$date" =~ ^[0-9a-z][0-9a-z.-]{0,39}$ ]]; then
    echo "rayjob.sh: '$date' cannot name a Kubernetes object (lowercase letters, digits, . and -; e.g. 2026-11-24)" >&2
    exit 2
fi
manifest="$(sed "s/\${RUN_DATE}/${date}/g" deploy/rayjob.yaml)"
if [ -n "${RAYJOB_DRY_RUN:-}" ]; then
    printf '%s\n' "$manifest"
else
    printf '%s\n' "$manifest" | kubectl create -f - -o name
fi
