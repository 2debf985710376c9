"""The reference path for tests/label/test_real_model.py and test_chat_template.py: plain vLLM's `LLM.chat`
on the same messages (and tools) and settings as a labeling run, no Ray, no job code on the generation path.

    python tests/reference_chat.py REQUEST.json RESULT.json

REQUEST: {"model", "engine_kwargs", "max_tokens", "rows": [{"id", "messages", "schema", "tools"?}]}: the engine's
keyword arguments as the job hands them to vLLM; `schema` null for unconstrained rows; `tools` (OpenAI
function tools) for a model's own tools template.
RESULT: {id: generated text}. A script of its own: vLLM starts its engine core in a child process,
which needs a `__main__` guard.
"""

import json
import sys


def main(request_path: str, result_path: str) -> None:
    from vllm import LLM, SamplingParams
    from vllm.sampling_params import StructuredOutputsParams

    request = json.loads(open(request_path).read())
    llm = LLM(request["model"], **request["engine_kwargs"])
    rows = request["rows"]
    params = [SamplingParams(temperature=0.0, max_tokens=request["max_tokens"],
                             structured_outputs=StructuredOutputsParams(json=row["schema"]) if row["schema"] else None)
              for row in rows]
    if any(row.get("tools") for row in rows):  # each row its own tools, rendered by the model's chat template
        outputs = [llm.chat(row["messages"], p, use_tqdm=False, tools=row["tools"])[0] for row, p in zip(rows, params)]
    else:
        outputs = llm.chat([row["messages"] for row in rows], params, use_tqdm=False)
    result = {row["id"]: out.outputs[0].text for row, out in zip(rows, outputs)}
    open(result_path, "w").write(json.dumps(result))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
