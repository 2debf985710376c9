# GPU image for `ray job submit -- python jobs/label.py conf=prod` on a Ray cluster (head and workers).
#   docker build -t hammer-labeling:0.1.0 .
# The base image's Ray must equal the pinned ray==2.60.0 (pyproject.toml) and the cluster's Ray;
# the `gpu` extra, ray[llm]==2.60.0, brings the vllm it pins (0.29.0, CUDA).
FROM rayproject/ray:2.60.0-py311-gpu

# The base image's user `ray` (uid 1000, group users) has a writable home; nothing here needs root.
USER 1000:100
WORKDIR /home/ray/hammer-labeling

# The package and its pinned dependencies in one layer; jobs/, conf/ and deploy/ after it, so that
# editing a config or an entry script does not reinstall vLLM.
COPY --chown=1000:100 pyproject.toml README.md ./
COPY --chown=1000:100 deploy/constraints-gpu.txt ./deploy/
COPY --chown=1000:100 pipelines ./pipelines
RUN pip install --no-cache-dir --constraint deploy/constraints-gpu.txt '.[gpu]'

COPY --chown=1000:100 jobs ./jobs
COPY --chown=1000:100 conf ./conf
COPY --chown=1000:100 deploy ./deploy

# No credentials are baked in: S3 access comes from the node's IAM role or AWS_* variables, and a
# private model hub's token from HF_TOKEN, at run time.
ENV PYTHONUNBUFFERED=1
