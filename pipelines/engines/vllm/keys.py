"""Names the vLLM kind's modules share, kept apart so that none of them imports another for a name
(stage.py is imported on the driver, udf.py only in engine actors, plugin.py and stats.py in every
vLLM process)."""

RECORD_DIR_ENV = "HAMMER_ENGINE_RECORD_DIR"  # where engines record their settings and step figures
# Our keys in ray.data.llm's rows (stage.py writes the label's, udf.py reads and writes them in the engine actor).
SAMPLES_KEY = "hammer_sample_params"  # in: the sampled request's parameters, or None
SAMPLE_TEXTS = "hammer_sample_texts"  # out: the sampled outputs' texts
FINISH_REASON = "hammer_finish_reason"  # out: why the label's output ended, as vLLM says (stop, length)
SAMPLE_FINISH_REASONS = "hammer_sample_finish_reasons"  # out: why each sampled output ended
SAMPLE_ERROR = "hammer_sample_error"  # out: the engine's message when the sampled request failed
LOGPROB_STATS = "hammer_logprob_stats"  # out: {mean, min, value_mean, value_min} of the label's tokens

