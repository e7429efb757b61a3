"""The identity guard: does an answer (or a study's title) name a model family or maker?

A battle whose answer names a model is flagged: recorded with the reason and left out of
the ratings by default, since a rater who reads "I am Gemma" is no longer blind.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

__all__ = ["IDENTITY_PATTERNS", "identity_terms"]

# Families, makers and products a small model may name when asked who it is. Matching is
# case-insensitive on word boundaries; false positives (an answer about Google Maps) only
# exclude a battle from the default ratings, false negatives would unblind a rater.
IDENTITY_PATTERNS: tuple[tuple[str, str], ...] = (
    ("Gemma", r"gemma"),
    ("Gemini", r"gemini"),
    ("Google", r"google"),
    ("DeepMind", r"deep\s?mind"),
    ("Qwen", r"qwen\d*(?:\.\d+)?|qwq"),
    ("Alibaba", r"alibaba"),
    ("Tongyi", r"tongyi"),
    ("GLM", r"(?:chat)?glm(?:-?\d[\w.]*)?"),
    ("Zhipu", r"zhipu(?:\s?ai)?|z\.ai"),
    ("Llama", r"llama\d*(?:\.\d+)?"),
    ("Meta", r"meta(?:\s?ai)?"),
    ("SmolLM", r"smol\s?lm\d*"),
    ("Hugging Face", r"hugging\s?face"),
    ("Mistral", r"mistral|mixtral|ministral"),
    ("Phi", r"phi-?\d(?:\.\d+)?"),
    ("Microsoft", r"microsoft"),
    ("OpenAI", r"open\s?ai"),
    ("GPT", r"(?:chat)?gpt(?:-?\d[\w.]*)?"),
    ("Claude", r"claude"),
    ("Anthropic", r"anthropic"),
    ("DeepSeek", r"deep\s?seek"),
    ("Granite", r"granite"),
    ("IBM", r"ibm"),
    ("Falcon", r"falcon"),
    ("OLMo", r"olmo|allen\s?ai"),
    ("InternLM", r"intern\s?lm"),
    ("Baichuan", r"baichuan"),
    ("MiniCPM", r"mini\s?cpm"),
    ("NVIDIA", r"nvidia|nemotron"),
    ("Cohere", r"cohere|command[\s-]r|aya"),
    ("EXAONE", r"exaone"),
    ("StableLM", r"stable\s?lm|stability\s?ai"),
    ("Baidu", r"baidu|ernie"),
    ("Moonshot", r"moonshot|kimi"),
    ("ByteDance", r"bytedance|doubao"),
    ("Tencent", r"tencent|hunyuan"),
)
_IDENTITY_RE = [
    (label, re.compile(rf"(?<![\w]){pat}(?![\w])", re.IGNORECASE))
    for label, pat in IDENTITY_PATTERNS
]


def _model_terms(model_names: Iterable[str]) -> list[str]:
    terms = set()
    for name in model_names:
        base = name.split("#")[-1].split("/")[-1].split(":")[-1]
        terms.add(base)
        head = re.split(r"[-_.\s]", base)[0]
        if len(head) >= 4 and head.isalpha():
            terms.add(head)
    return sorted(t for t in terms if t)


def identity_terms(text: str, model_names: Sequence[str] = ()) -> list[str]:
    """Families, makers or study model names that ``text`` mentions (empty: none)."""
    found = [label for label, rx in _IDENTITY_RE if rx.search(text)]
    lowered = text.lower()
    for term in _model_terms(model_names):
        if term.lower() in lowered and term not in found:
            found.append(term)
    return found
