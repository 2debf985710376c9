#!/usr/bin/env bash
# Creates one labeling RayJob (deploy/rayjob.yaml) for a partition date; prints the created name.
#   deploy/rayjob.sh [DATE [key=value ...]]   # DATE defaults to yesterday, UTC; overrides go to the entrypoint
#   RAYJOB_DRY_RUN=1 deploy/rayjob.sh 2026-11-24   # print the manifest instead of creating it
# The date is fixed here, at creation: KubeRay's retries of this RayJob label the same partition.
# The entrypoint's config is loaded first (deploy/check_entrypoint.py, with the project's Python:
# RAYJOB_PYTHON, else .venv/bin/python, else python3): a config error exits 2 before anything is
# created, instead of failing on a fresh GPU cluster once per retry.
set -euo pipefail
cd "$(dirname "$0")/.."
date="${1:-$(date -u -d yesterday +%F)}"
# It goes into the RayJob's name, hammer-labeling-DATE-xxxxx (generateName's 5 characters), which KubeRay
# 1.x refuses unless it is a DNS-1035 label of at most 47 characters (MaxRayJobNameLength: its
# RayCluster's 53 less the 6 it appends): lowercase letters, digits and '-', so at most 25 of them here.
if ! [[ "$date" =~ ^[0-9a-z][0-9a-z-]{0,24}$ ]]; then
    echo "rayjob.sh: '$date' cannot name a RayJob (hammer-labeling-DATE-xxxxx must be a DNS-1035 label of at most 47" \
         "characters: DATE of lowercase letters, digits and -, at most 25; e.g. 2026-11-24)" >&2
    exit 2
fi
overrides=""
if [ "$#" -gt 1 ]; then
    overrides="$(printf '%q ' "${@:2}")"
fi
template="$(sed "s/\${RUN_DATE}/${date}/g" deploy/rayjob.yaml)"
manifest="${template//'${OVERRIDES}'/$overrides}"
if [ -z "${RAYJOB_SKIP_CONFIG_CHECK:-}" ]; then
    python="${RAYJOB_PYTHON:-}"
    if [ -z "$python" ]; then
        if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
    fi
    printf '%s\n' "$manifest" | "$python" deploy/check_entrypoint.py
fi
if [ -n "${RAYJOB_DRY_RUN:-}" ]; then
    printf '%s\n' "$manifest"
else
    printf '%s\n' "$manifest" | kubectl create -f - -o name
fi
