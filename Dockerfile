# GPU image for `ray job submit -- python jobs/label.py conf=prod` on a Ray cluster (head and workers).
#   docker build -t hammer-labeling:0.1.0 .
#
# One CUDA stack: the locked wheels (deploy/requirements-gpu.lock: torch 2.13.0 and vllm 0.29.0 from
# PyPI) are built for CUDA 13, so the base is Ray's CUDA 13 image of the same Ray (2.60.0, as pinned
# in pyproject.toml and run by the cluster). The tag could not be pulled where this was written:
# check it with `docker manifest inspect` (or pass --build-arg BASE_IMAGE=... with another Ray
# 2.60.0 CUDA 13 image); tests/test_deploy.py checks that its CUDA major equals the lock's.
# GPU nodes need an NVIDIA driver of 580.65 or newer (CUDA 13.0's minimum); the preflight's probe
# of an engine node names the driver it finds and refuses an older one.
ARG BASE_IMAGE=rayproject/ray:2.60.0-py311-cu130
FROM ${BASE_IMAGE}

# The base image's user `ray` (uid 1000, group users) has a writable home; nothing here needs root.
USER 1000:100
WORKDIR /home/ray/hammer-labeling

# Every Python package at the version the lock names (make lock regenerates it), then `pip check`,
# so two builds of one commit hold the same packages; the project itself without dependencies, as a
# wheel with its profiles (pipelines/conf/) and commands (hammer-label, ...). jobs/ and deploy/ come
# after, so that editing an entry script reinstalls nothing.
COPY --chown=1000:100 deploy/requirements-gpu.lock ./deploy/
RUN pip install --no-cache-dir --no-deps -r deploy/requirements-gpu.lock && pip check
COPY --chown=1000:100 pyproject.toml README.md ./
COPY --chown=1000:100 pipelines ./pipelines
RUN pip install --no-cache-dir --no-deps .

COPY --chown=1000:100 jobs ./jobs
COPY --chown=1000:100 deploy ./deploy

# No credentials are baked in: S3 access comes from the node's IAM role or AWS_* variables, and a
# private model hub's token from HF_TOKEN (a Kubernetes secret in deploy/rayjob.yaml), at run time.
ENV PYTHONUNBUFFERED=1
