"""What a rater is shown of an answer: the same clean-up for every model.

Models differ in surface habits that give them away without reading a word: Gemma's
answers begin with a newline or a space and SmolLM's never do; Gemma writes raw
``<start_of_image>`` tokens and HTML tags from its vocabulary. :func:`shown_answer` makes
the text a rater sees free of such marks, the same way for every model:

1. the text is cut at the first end-of-turn or start-of-turn marker of any chat format
   (``<end_of_turn>``, ``<|im_end|>``, ``<|eot_id|>`` ...): a model writing one has ended
   its answer, whatever follows is not part of it;
2. special-token text (``<|...|>``, ``<start_of_image>``, ``<unused7>``, ``[multimodal]``)
   and markup tags (``<b>``, ``</td>``, ``<div class="x">``) are removed;
3. control and format characters (zero-width spaces, bidi marks, U+FFFD from a cut
   character) are removed, line ends become ``\\n``, tabs spaces;
4. spaces at line ends are dropped, three or more line breaks become two, and the text
   is stripped at both ends.

The raw text is kept beside the shown one in the votes file.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["STOP_MARKERS", "shown_answer"]

STOP_MARKERS: tuple[str, ...] = (
    "<end_of_turn>",
    "<start_of_turn>",
    "<eos>",
    "<|im_end|>",
    "<|im_start|>",
    "<|endoftext|>",
    "<|eot_id|>",
    "<|start_header_id|>",
    "<|end|>",
    "<|user|>",
    "<|assistant|>",
    "<|end_of_text|>",
    "[/INST]",
    "[INST]",
)
"""End-of-turn and start-of-turn markers of the common chat formats (cut there)."""

_SPECIAL_RE = re.compile(
    r"<\|[^<>|\n]{1,64}\|>"  # <|im_start|>, <|eot_id|>, <|reserved_special_token_3|>
    r"|</?[A-Za-z][A-Za-z0-9_:-]{0,40}(?:\s[^<>\n]{0,200})?/?>"  # <b>, </td>, <start_of_image>
    r"|\[(?:multimodal|@BOS@|/?INST)\]|<</?SYS>>"
)
_STOP_RE = re.compile("|".join(re.escape(m) for m in STOP_MARKERS))
_BLANK_LINES_RE = re.compile(r"\n{3,}")
_LINE_END_RE = re.compile(r"[ \u00a0\u3000]+\n")


def _keep(c: str) -> bool:
    if c in "\n ":
        return True
    cat = unicodedata.category(c)
    # Cc control, Cf format (zero-width, bidi, soft hyphen), Cs lone surrogates,
    # Co private use, Cn unassigned; U+FFFD marks a character cut in half by a token.
    return cat[0] != "C" and c != "\ufffd"


def shown_answer(raw: str) -> str:
    """The text a rater sees for answer ``raw`` (see the module docstring)."""
    text = raw.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    cut = _STOP_RE.search(text)
    if cut is not None:
        text = text[: cut.start()]
    text = _SPECIAL_RE.sub("", text)
    text = "".join(c for c in text if _keep(c))
    text = _LINE_END_RE.sub("\n", text)
    text = _BLANK_LINES_RE.sub("\n\n", text)
    return text.strip()
