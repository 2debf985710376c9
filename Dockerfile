# GPU image for `ray job submit -- python jobs/label.py conf=prod` on a Ray cluster.
# Build: docker build -t hammer-labeling:0.1.0 .
# The Ray version must match the cluster's; ray[llm]==2.60.0 brings vllm==0.29.0 (CUDA).
FROM rayproject/ray:2.60.0-py311-gpu

WORKDIR /home/ray/hammer-labeling
COPY --chown=ray:users pyproject.toml README.md ./
COPY --chown=ray:users pipelines ./pipelines
RUN pip install --no-cache-dir -e '.[gpu]'
COPY --chown=ray:users jobs ./jobs
COPY --chown=ray:users conf ./conf

# No credentials here: S3 access comes from the node's IAM role or AWS_* variables at run time.
USER ray
