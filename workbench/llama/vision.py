"""Images in process: llama.cpp's multimodal library (``mtmd``) inside a generation worker.

Child side only (imported by :mod:`workbench.llama.gen_worker`, never by the parent).
:class:`Vision` holds the ``mtmd`` context of a model's projector (``mmproj``). A prompt
with images is rendered with ``mtmd``'s media marker where each image goes, split by
``mtmd_tokenize`` into text and image chunks, and evaluated chunk by chunk: text with
``Llama.eval``; an image by encoding it with the projector (``mtmd_encode_chunk``,
timed apart: the row's ``image_encode_s``) and decoding its embeddings into the language
model's context (``mtmd_helper_decode_image_chunk``, prompt processing like any prompt
token). The last text chunk is left for ``Llama.generate``, which evaluates it and
samples from there, as for a text prompt.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from workbench.errors import BackendError

DECODED_BY_LLAMA_CPP = ("png", "jpeg")
"""Formats llama.cpp's own decoder (stb_image, as llama-server uses) reads from the file's
bytes; others (WebP) reach it as RGB pixels decoded by Pillow."""


def text_only_refusal(n_images: int) -> str:
    """The row's error when a model without a projector is given images."""
    what = "an image" if n_images == 1 else f"{n_images} images"
    return (
        f"a text-only model cannot take {what} (no projector mmproj-*.gguf beside the "
        "file or named in workbench.toml)"
    )


def image_payload(fmt: str, data: bytes, width: int, height: int, rgb: Any) -> dict[str, Any]:
    """What the worker gets for one image: the file's bytes, or its RGB pixels."""
    if fmt in DECODED_BY_LLAMA_CPP:
        return {"data": data}
    return {"rgb": rgb(), "nx": width, "ny": height}


@dataclass
class Evaluated:
    """A multimodal prompt after its chunks before the last were evaluated."""

    last: list[int]
    """The last text chunk's tokens, for ``Llama.generate``."""
    n_tokens: int
    """Every position of the prompt: text tokens and image tokens."""
    image_tokens: int = 0
    encode_s: float = 0.0
    per_image: list[int] = field(default_factory=list)
    """Tokens of each image, in order."""


class VisionError(BackendError):
    """A projector that cannot be used, or an image it refused (one line)."""


class Vision:
    """The ``mtmd`` context of one projector, bound to a loaded ``Llama``.

    Args:
        llm: the loaded language model.
        mmproj: the projector file.
        n_threads: encoder threads.
        use_gpu: put the encoder on the GPU (when the build has one).
        image_tokens: the image token budget (``image_min_tokens`` and
            ``image_max_tokens``; projectors with a fixed count per image ignore it);
            None: the projector's default.
    """

    def __init__(
        self,
        llm: Any,
        mmproj: str,
        *,
        n_threads: int,
        use_gpu: bool,
        image_tokens: int | None = None,
    ) -> None:
        import llama_cpp.mtmd_cpp as mtmd

        self.mtmd = mtmd
        self.llm = llm
        params = mtmd.mtmd_context_params_default()
        params.use_gpu = use_gpu
        params.n_threads = n_threads
        params.print_timings = False
        if image_tokens is not None:
            params.image_min_tokens = image_tokens
            params.image_max_tokens = image_tokens
        ctx = mtmd.mtmd_init_from_file(mmproj.encode(), llm.model, params)
        if not ctx:
            raise VisionError(
                f"cannot load the projector {mmproj} (not a projector, or it does not "
                "match this model; see the worker log)"
            )
        self.ctx = ctx
        llm._stack.callback(self.close)  # freed with the model
        if not mtmd.mtmd_support_vision(ctx):
            raise VisionError(f"{mmproj}: the projector has no vision encoder")
        self.marker = mtmd.mtmd_default_marker().decode("utf-8")

    def close(self) -> None:
        if self.ctx:
            self.mtmd.mtmd_free(self.ctx)
            self.ctx = None

    def marked(self, messages: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """``messages`` with content parts joined into text, each image part replaced by
        the media marker (where ``mtmd_tokenize`` puts that image's tokens)."""
        out = []
        for m in messages:
            content = m["content"]
            if isinstance(content, list):
                pieces = [
                    self.marker if part.get("type") == "image_url" else str(part.get("text", ""))
                    for part in content
                ]
                content = "\n".join(pieces)
            out.append({**m, "content": content})
        return out

    def evaluate(
        self, prompt: str, images: Sequence[dict[str, Any]], *, add_special: bool
    ) -> Evaluated:
        """Tokenize ``prompt`` (with one marker per image; each image as
        :func:`image_payload` made it) and evaluate every chunk but the last text one
        into the model's (cleared) context.

        Raises:
            VisionError: an image the projector cannot read, a marker count that does not
                match, or the prompt longer than the context.
        """
        mtmd, llm = self.mtmd, self.llm
        bitmaps = []
        chunks = None
        try:
            for i, image in enumerate(images):
                if "rgb" in image:
                    px = (ctypes.c_uint8 * len(image["rgb"])).from_buffer(bytearray(image["rgb"]))
                    bitmap = mtmd.mtmd_bitmap_init(image["nx"], image["ny"], px)
                else:
                    data = image["data"]
                    buf = (ctypes.c_uint8 * len(data)).from_buffer(bytearray(data))
                    bitmap = mtmd.mtmd_helper_bitmap_init_from_buf(self.ctx, buf, len(data), False)
                if not bitmap:
                    raise VisionError(f"image {i + 1}: llama.cpp cannot decode it")
                bitmaps.append(bitmap)
            text = mtmd.mtmd_input_text()
            raw = prompt.encode("utf-8")
            text.text, text.text_len = raw, len(raw)
            text.add_special, text.parse_special = add_special, True
            chunks = mtmd.mtmd_input_chunks_init()
            array = (mtmd.mtmd_bitmap_p_ctypes * max(len(bitmaps), 1))(*bitmaps)
            rc = mtmd.mtmd_tokenize(self.ctx, chunks, ctypes.byref(text), array, len(bitmaps))
            if rc != 0:
                why = (
                    "the prompt's image markers do not match its images"
                    if rc == 1
                    else ("the projector could not preprocess an image")
                )
                raise VisionError(f"{why} (mtmd_tokenize returned {rc})")
            n_total = int(mtmd.mtmd_helper_get_n_tokens(chunks))
            n_ctx = min(llm.n_ctx(), len(llm.input_ids))
            if n_total >= n_ctx:
                raise VisionError(
                    f"prompt is {n_total} tokens with its images, longer than the context "
                    f"({n_ctx}); raise n_ctx, lower image_tokens or shorten the prompt"
                )
            return self._eval_chunks(chunks, n_total)
        finally:
            if chunks is not None:
                mtmd.mtmd_input_chunks_free(chunks)
            for b in bitmaps:
                mtmd.mtmd_bitmap_free(b)

    def _eval_chunks(self, chunks: Any, n_total: int) -> Evaluated:
        import llama_cpp

        mtmd, llm = self.mtmd, self.llm
        n = int(mtmd.mtmd_input_chunks_size(chunks))
        out = Evaluated([], n_total)
        for i in range(n):
            chunk = mtmd.mtmd_input_chunks_get(chunks, i)
            kind = mtmd.mtmd_input_chunk_get_type(chunk)
            if kind == mtmd.MTMD_INPUT_CHUNK_TYPE_TEXT:
                count = ctypes.c_size_t()
                ptr = mtmd.mtmd_input_chunk_get_tokens_text(chunk, ctypes.byref(count))
                tokens = [int(ptr[j]) for j in range(count.value)]
                if i == n - 1:
                    out.last = tokens  # generate() evaluates it and samples
                elif tokens:
                    llm.eval(tokens)
                continue
            if kind != mtmd.MTMD_INPUT_CHUNK_TYPE_IMAGE:
                raise VisionError("only image input is supported (not audio)")
            n_img = int(mtmd.mtmd_input_chunk_get_n_tokens(chunk))
            t0 = time.perf_counter()
            if mtmd.mtmd_encode_chunk(self.ctx, chunk) != 0:
                raise VisionError("the projector failed to encode an image")
            out.encode_s += time.perf_counter() - t0
            embd = mtmd.mtmd_get_output_embd(self.ctx)
            new_n_past = llama_cpp.llama_pos(0)
            rc = mtmd.mtmd_helper_decode_image_chunk(
                self.ctx, llm.ctx, chunk, embd, llama_cpp.llama_pos(llm.n_tokens),
                llama_cpp.llama_seq_id(0), llm.n_batch, ctypes.byref(new_n_past),
                mtmd.mtmd_helper_post_decode_callback(), None,  # no callback: a NULL one
            )  # fmt: skip
            if rc != 0:
                raise VisionError(f"decoding an image's embeddings failed (code {rc})")
            llm.n_tokens = new_n_past.value
            out.image_tokens += n_img
            out.per_image.append(n_img)
        if not out.last:
            raise VisionError("the prompt must end with text after its images")
        return out
