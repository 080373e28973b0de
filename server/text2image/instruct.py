"""An optional small instruct model (transformers) that rewrites a short idea into a richer object description
for the expander; the template is used whenever it is missing or its text drops the subject."""

from __future__ import annotations

import functools
import os

from ..generators.base import cached_on_hub, library_present
from .expand import Describer, Subject

WEIGHTS_ENV = "O3F_PROMPT_MODEL"  # a local folder with a transformers causal LM and its tokenizer
DEFAULT_REPO = "Qwen/Qwen2.5-0.5B-Instruct"  # Apache-2.0, 0.5B parameters: a few seconds on a CPU
LICENCE = "Qwen2.5-0.5B-Instruct: Apache-2.0"
MAX_NEW_TOKENS = 48
INSTRUCTION = ("Describe the object the user names as a concept for a 3D game asset, in one sentence of at most "
               "25 words: its shape, materials and colours. Name the object itself. No scene, no background, "
               "no camera or lighting words.")


def instruct_source() -> tuple[str | None, str]:
    """(what from_pretrained loads, how it was found) or (None, why the instruct expander cannot run)."""
    if not library_present("transformers") or not library_present("torch"):
        return None, "the instruct expander needs transformers and torch (pip install transformers torch)"
    local = os.environ.get(WEIGHTS_ENV, "").strip()
    if local:
        if os.path.isfile(os.path.join(local, "config.json")):
            return local, f"instruct model from {local}"
        return None, f"{WEIGHTS_ENV}={local} has no config.json"
    if cached_on_hub(DEFAULT_REPO, "config.json"):
        return DEFAULT_REPO, f"instruct model {DEFAULT_REPO} from the Hugging Face cache ({LICENCE})"
    return None, (f"no instruct model: set {WEIGHTS_ENV} to a local folder or put {DEFAULT_REPO} in the "
                  "Hugging Face cache (nothing is downloaded here)")


@functools.lru_cache(maxsize=1)
def _load(source: str):
    # Kept apart from the GPU model host: it runs on the CPU and must not evict the text-to-image model.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    local_only = not os.path.isdir(source)
    tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=local_only)
    model = AutoModelForCausalLM.from_pretrained(source, local_files_only=local_only)
    model.eval()
    return tokenizer, model


class InstructDescriber(Describer):
    """Greedy decoding on the CPU, so one prompt always gives the same description."""

    def __init__(self, source: str, max_new_tokens: int = MAX_NEW_TOKENS):
        self.source = source
        self.max_new_tokens = max_new_tokens
        self.name = f"instruct {source}"

    def describe(self, text: str, subject: Subject) -> str:
        import torch

        tokenizer, model = _load(self.source)
        if getattr(tokenizer, "chat_template", None):
            messages = [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": text}]
            ids = tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)["input_ids"]
        else:
            ids = tokenizer(f"{INSTRUCTION}\nObject: {text}\nDescription:", return_tensors="pt")["input_ids"]
        with torch.no_grad():
            output = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=self.max_new_tokens,
                                    do_sample=False, pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id)
        return tokenizer.decode(output[0, ids.shape[1]:], skip_special_tokens=True)


def describer(kind: str) -> Describer:
    """'template' or 'instruct'; an instruct model that cannot run here is refused with the reason."""
    from ..errors import InputError

    if kind == "template":
        return Describer()
    if kind == "instruct":
        source, reason = instruct_source()
        if source is None:
            raise InputError("options.expander", kind, f"'template' ({reason})")
        return InstructDescriber(source)
    raise InputError("options.expander", kind, "'template' or 'instruct'")
