# GPU image for `ray job submit -- python jobs/label.py conf=prod` on a Ray cluster (head and workers).
#   docker build -t hammer-labeling:0.1.0 .
#
# The base is Docker's official Python image of the lock's Python (3.11) on Debian 12, a tag that is
# published and kept: the CUDA user space comes with the locked wheels (torch 2.13.0 and vllm 0.29.0
# from PyPI are built for CUDA 13 and pull nvidia-cuda-runtime, cuBLAS, cuDNN, NCCL ... as wheels),
# and the driver from the host (the NVIDIA container toolkit mounts it). Not Ray's images: the
# rayproject/ray:2.60.0-py311-cu130 tag this file named before was never pulled, Ray's CUDA 13 images
# for its LLM stack are built for Python 3.12 only (ray PRs 61497, 64625), and a py3.11 CUDA 12.8 base
# under these CUDA 13 wheels fails on an older driver (ray issue 64484). The full (not slim) image
# has the C compiler Triton builds its launchers with at run time, and wget for KubeRay's probes.
# tests/test_deploy.py checks that the base's Python is the lock's and that the lock holds one CUDA major.
# GPU nodes need an NVIDIA driver of 580.65 or newer (CUDA 13.0's minimum); the preflight's probe
# of an engine node names the driver it finds and refuses an older one.
ARG BASE_IMAGE=python:3.11-bookworm
FROM ${BASE_IMAGE}

# KubeRay starts Ray in the image as uid 1000 (the user of Ray's own images), which holds nothing but
# its home; the packages are installed system-wide, before it takes over.
RUN useradd --create-home --uid 1000 --gid 100 ray
WORKDIR /home/ray/hammer-labeling

# Every Python package at the version the lock names (make lock regenerates it), then `pip check`,
# so two builds of one commit hold the same packages; the project itself without dependencies, as a
# wheel with its profiles (pipelines/conf/) and commands (hammer-label, ...). jobs/ and deploy/ come
# after, so that editing an entry script reinstalls nothing.
COPY deploy/requirements-gpu.lock ./deploy/
RUN pip install --no-cache-dir --no-deps -r deploy/requirements-gpu.lock && pip check
COPY pyproject.toml README.md ./
COPY pipelines ./pipelines
RUN pip install --no-cache-dir --no-deps .

COPY jobs ./jobs
COPY deploy ./deploy
RUN chown -R 1000:100 /home/ray/hammer-labeling
USER 1000:100

# No credentials are baked in: S3 access comes from the node's IAM role or AWS_* variables, and a
# private model hub's token from HF_TOKEN (a Kubernetes secret in deploy/rayjob.yaml), at run time.
ENV PYTHONUNBUFFERED=1
