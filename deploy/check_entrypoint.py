"""Loads the labeling config that a rendered RayJob's entrypoint names (the manifest on stdin), so
that deploy/rayjob.sh refuses a config error before it creates anything.

KubeRay retries every failed run alike (rayjob_controller.go, checkBackoffLimitAndUpdateStatusIfNeeded:
any JobDeploymentStatusFailed below backoffLimit + 1 is retried, only a deadline is not), each retry
on a fresh GPU cluster; it cannot tell a config error (exit 2) from a crash. Found here, a config
error costs nothing. Exit codes: 0 the config loads; 2 it does not, or it cannot be checked here.
"""

import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the repo root


def main() -> int:
    try:
        import yaml

        from pipelines.config import ConfigError
        from pipelines.label.config import load_config
    except ImportError as e:
        print(f"rayjob.sh: cannot check the entrypoint's config here ({e}): run it from the project's environment "
              "(make setup; or RAYJOB_PYTHON=path/to/python), or set RAYJOB_SKIP_CONFIG_CHECK=1", file=sys.stderr)
        return 2
    words = shlex.split(yaml.safe_load(sys.stdin)["spec"]["entrypoint"])
    if words[:2] != ["python", "jobs/label.py"]:
        print(f"rayjob.sh: the entrypoint is not `python jobs/label.py ...`: {' '.join(words[:3])}", file=sys.stderr)
        return 2
    try:
        load_config(words[2:])
    except ConfigError as e:
        print(f"rayjob.sh: the entrypoint's config error, nothing created: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
