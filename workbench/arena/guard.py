"""The identity guard: does an answer (or a study's title) name a model family or maker?

A battle whose answer names a model is flagged: recorded with the reason and left out of
the ratings by default, since a rater who reads "I am Gemma" is no longer blind.

Matching works on whole words of a folded text, so that spelling games do not hide a name
and ordinary words do not trip it:

1. Unicode NFKC (full-width and styled letters become plain ones), then NFKD with the
   combining marks dropped ("Gémma" is "Gemma");
2. format characters removed: zero-width spaces and joiners, soft hyphens, bidi marks;
3. look-alike letters from other scripts mapped to the Latin letter they imitate
   (Cyrillic "е", Greek "ο"), then case folded;
4. the text cut into words at every character that is not a letter or digit (so
   "Hugging-Face", "smol_lm" and "Deep Mind" are sequences of words), with runs of single
   letters ("G e m m a", "S.m.o.l") also read as one word;
5. a name matches one word, or up to four consecutive words read together ("hugging" +
   "face"), whole: the name alone or followed by a version or a known suffix
   ("SmolLMv2", "GoogleAI", "HuggingFaceTB"), never inside a longer word ("Papaya" is not
   Aya, "Bernie" is not Ernie, "Olmos" is not OLMo).

False positives (an answer about Google Maps) only keep a battle out of the default
ratings; a miss would unblind a rater.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

__all__ = ["IDENTITY_PATTERNS", "fold_words", "identity_terms"]

# Families, makers and products a small model may name when asked who it is, as regexes
# over one folded word (letters and digits only; the parts of a name are written joined).
IDENTITY_PATTERNS: tuple[tuple[str, str], ...] = (
    ("Gemma", r"gemma"),
    ("Gemini", r"gemini"),
    ("Google", r"google"),
    ("DeepMind", r"deepmind"),
    ("Qwen", r"qwen|qwq"),
    ("Alibaba", r"alibaba"),
    ("Tongyi", r"tongyi"),
    ("GLM", r"(?:chat)?glm"),
    ("Zhipu", r"zhipu|zai"),
    ("Llama", r"llama"),
    ("Meta", r"meta"),
    ("SmolLM", r"smollm"),
    ("Hugging Face", r"huggingface"),
    ("Mistral", r"mistral|mixtral|ministral"),
    ("Phi", r"phi\d[\d.]*"),
    ("Microsoft", r"microsoft"),
    ("OpenAI", r"openai"),
    ("GPT", r"(?:chat)?gpt"),
    ("Claude", r"claude"),
    ("Anthropic", r"anthropic"),
    ("DeepSeek", r"deepseek"),
    ("Granite", r"granite"),
    ("IBM", r"ibm"),
    ("Falcon", r"falcon"),
    ("OLMo", r"olmo|allenai"),
    ("InternLM", r"internlm"),
    ("Baichuan", r"baichuan"),
    ("MiniCPM", r"minicpm"),
    ("NVIDIA", r"nvidia|nemotron"),
    ("Cohere", r"cohere|commandr|aya"),
    ("EXAONE", r"exaone"),
    ("StableLM", r"stablelm|stabilityai"),
    ("Baidu", r"baidu|ernie"),
    ("Moonshot", r"moonshot|kimi"),
    ("ByteDance", r"bytedance|doubao"),
    ("Tencent", r"tencent|hunyuan"),
)

# What may follow a name inside the same word: a version ("2", "v2", "3n", "2.5" read as
# "25"), a size ("135m"), or a maker's usual tail ("AI", "TB", "Chat", "Labs").
_SUFFIX = r"(?:v?\d[a-z0-9]*|ai|tb|lm|chat|labs?|research|cloud|instruct|it|base)?"

_FAMILY_RE = re.compile(
    "|".join(f"(?P<g{i}>(?:{pat}){_SUFFIX})" for i, (_, pat) in enumerate(IDENTITY_PATTERNS))
)

# Letters of other scripts drawn like Latin ones (Unicode confusables for Cyrillic and
# Greek, and Latin small capitals), so "Gеmma" with a Cyrillic "е" still reads "gemma".
_LOOKALIKES = str.maketrans(
    {
        **dict.fromkeys("аА", "a"),
        **dict.fromkeys("вВ", "b"),
        **dict.fromkeys("сС", "c"),
        **dict.fromkeys("ԁ", "d"),
        **dict.fromkeys("еЕёЁ", "e"),
        **dict.fromkeys("һҺ", "h"),
        **dict.fromkeys("іІӀ", "i"),
        **dict.fromkeys("јЈ", "j"),
        **dict.fromkeys("кК", "k"),
        **dict.fromkeys("мМ", "m"),
        **dict.fromkeys("нН", "h"),
        **dict.fromkeys("оОο", "o"),
        **dict.fromkeys("рР", "p"),
        **dict.fromkeys("ԛ", "q"),
        **dict.fromkeys("ѕЅ", "s"),
        **dict.fromkeys("тТ", "t"),
        **dict.fromkeys("уУ", "y"),
        **dict.fromkeys("хХ", "x"),
        **dict.fromkeys("ԝԜ", "w"),
        **dict.fromkeys("αΑ", "a"),
        **dict.fromkeys("βΒ", "b"),
        **dict.fromkeys("εΕ", "e"),
        **dict.fromkeys("ηΗ", "h"),
        **dict.fromkeys("ιΙ", "i"),
        **dict.fromkeys("κΚ", "k"),
        **dict.fromkeys("μΜ", "m"),
        **dict.fromkeys("νΝ", "n"),
        **dict.fromkeys("Ο", "o"),
        **dict.fromkeys("ρΡ", "p"),
        **dict.fromkeys("τΤ", "t"),
        **dict.fromkeys("υΥ", "y"),
        **dict.fromkeys("χΧ", "x"),
        **dict.fromkeys("ζΖ", "z"),
        **dict.fromkeys("ℓʟ", "l"),
        # Latin small capitals
        **dict.fromkeys("ᴀ", "a"),
        **dict.fromkeys("ʙ", "b"),
        **dict.fromkeys("ᴄ", "c"),
        **dict.fromkeys("ᴅ", "d"),
        **dict.fromkeys("ᴇ", "e"),
        **dict.fromkeys("ɢ", "g"),
        **dict.fromkeys("ʜ", "h"),
        **dict.fromkeys("ɪ", "i"),
        **dict.fromkeys("ᴋ", "k"),
        **dict.fromkeys("ᴍ", "m"),
        **dict.fromkeys("ɴ", "n"),
        **dict.fromkeys("ᴏ", "o"),
        **dict.fromkeys("ᴘ", "p"),
        **dict.fromkeys("ʀ", "r"),
        **dict.fromkeys("ꜱ", "s"),
        **dict.fromkeys("ᴛ", "t"),
        **dict.fromkeys("ᴜ", "u"),
        **dict.fromkeys("ᴡ", "w"),
    }
)
_WORD_RE = re.compile(r"[a-z0-9]+")
_MAX_SPAN = 4  # words read together: "hugging face tb", "gpt 4 o"


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = "".join(
        c
        for c in unicodedata.normalize("NFKD", text)
        if not unicodedata.combining(c) and unicodedata.category(c) != "Cf"
    )
    return text.translate(_LOOKALIKES).casefold()


def fold_words(text: str) -> list[str]:
    """The words of ``text`` as the guard reads them (see the module docstring)."""
    words = _WORD_RE.findall(_fold(text))
    out: list[str] = []
    letters: list[str] = []
    for w in [*words, ""]:
        if len(w) == 1 and w.isalpha():
            letters.append(w)
            continue
        if len(letters) >= 3:  # "g e m m a": a spelled-out word
            out.append("".join(letters))
        else:
            out.extend(letters)
        letters = []
        if w:
            out.append(w)
    return out


def _spans(words: list[str]) -> Iterable[str]:
    for i in range(len(words)):
        joined = ""
        for w in words[i : i + _MAX_SPAN]:
            joined += w
            yield joined


def _model_terms(model_names: Iterable[str]) -> list[tuple[str, str]]:
    """(label, folded term) for each study model: its base name, and the first word of it
    without digits when that word is specific enough (4+ letters)."""
    terms: dict[str, str] = {}
    for name in model_names:
        base = name.split("@")[0].split("#")[-1].rstrip("/").split("/")[-1].split(":")[0]
        words = fold_words(base)
        if not words:
            continue
        terms.setdefault("".join(words), base)
        head = words[0].rstrip("0123456789")
        if len(head) >= 4 and head.isalpha():
            terms.setdefault(head, base)
    return [(label, term) for term, label in terms.items()]


def identity_terms(text: str, model_names: Sequence[str] = ()) -> list[str]:
    """Families, makers or study model names that ``text`` mentions (empty: none)."""
    words = fold_words(text)
    hits: set[int] = set()
    found_terms: list[str] = []
    model_res = [
        (label, re.compile(f"{re.escape(term)}{_SUFFIX}"))
        for label, term in _model_terms(model_names)
    ]
    for span in _spans(words):
        m = _FAMILY_RE.fullmatch(span)
        if m is not None and m.lastgroup is not None:
            hits.add(int(m.lastgroup[1:]))
        for label, rx in model_res:
            if label not in found_terms and rx.fullmatch(span):
                found_terms.append(label)
    found = [IDENTITY_PATTERNS[i][0] for i in sorted(hits)]
    return found + [t for t in found_terms if t not in found]
