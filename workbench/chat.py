"""Conversations: OpenAI-style ``{role, content}`` lists, checked, and what one request sends.

A conversation given by a user (``workbench compare --messages FILE.json``,
``wb.compare(messages=[...])``) is checked once, up front, and split into its system
prompt (which becomes :attr:`GenerationConfig.system_prompt`) and its turns. A
:class:`~workbench.backends.base.Prompt` carries the turns before its ``text``; the
backends build what they send from it with :func:`request_messages` (a chat template, a
server's chat API) or :func:`completion_text` (a base model, which continues plain text).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workbench.backends.base import Message, Prompt, PromptMode
from workbench.errors import InputError

ROLES = ("system", "user", "assistant")
"""The roles a message may have (tool calls are not part of a comparison)."""


def prompt_mode(chat_template: str | None) -> PromptMode:
    """How a local model gets its prompt: ``chat`` through the chat template its GGUF
    carries, ``completion`` (plain text to continue) when it has none (a base model)."""
    return "chat" if chat_template else "completion"


@dataclass(frozen=True)
class ParsedMessages:
    """A checked conversation: its system prompt and its turns, in order."""

    system: str | None
    """The system message's content (None: there is none)."""
    turns: tuple[Message, ...]
    """User and assistant messages, alternating, starting with the user."""

    @property
    def pending(self) -> bool:
        """The last turn is the user's: there is something to answer."""
        return bool(self.turns) and self.turns[-1].role == "user"


def parse_messages(items: Any, *, where: str = "messages") -> ParsedMessages:
    """Check an OpenAI-style message list and split off its system prompt.

    Args:
        items: a list of ``{"role", "content"}`` mappings (or :class:`Message` objects).
        where: names the input in error messages (a file name).

    Raises:
        InputError: not a list, an unknown role or key, content that is not a string,
            a system message after the first, or turns that do not alternate user,
            assistant, user, ... (chat templates refuse anything else).
    """
    if not isinstance(items, Sequence) or isinstance(items, str | bytes):
        raise InputError(f"{where}: expected a list of {{role, content}} messages")
    system: str | None = None
    turns: list[Message] = []
    for i, item in enumerate(items):
        at = f"{where}[{i}]"
        role: Any
        content: Any
        if isinstance(item, Message):
            role, content = item.role, item.content
        elif isinstance(item, Mapping):
            extra = sorted(set(item) - {"role", "content"})
            if extra:
                raise InputError(f"{at}: unknown key(s) {', '.join(map(str, extra))}")
            role, content = item.get("role"), item.get("content")
        else:
            raise InputError(f"{at}: expected an object with role and content")
        if role not in ROLES:
            raise InputError(f"{at}: role must be one of {', '.join(ROLES)}, not {role!r}")
        if not isinstance(content, str):
            raise InputError(f"{at}: content must be a string")
        if role == "system":
            if i != 0:
                raise InputError(f"{at}: a system message may only come first")
            system = content
            continue
        expected = "user" if not turns or turns[-1].role == "assistant" else "assistant"
        if role != expected:
            raise InputError(
                f"{at}: expected a {expected} message (turns alternate user, assistant, "
                "... starting with the user)"
            )
        if role == "user" and not content.strip():
            raise InputError(f"{at}: the user message is empty")
        turns.append(Message(role, content))
    return ParsedMessages(system, tuple(turns))


def load_messages(path: str | Path) -> ParsedMessages:
    """Read a conversation from a JSON file: a list of messages, or an object with a
    ``messages`` list (an OpenAI request body).

    Raises:
        InputError: the file cannot be read, is not JSON, or holds no valid conversation.
    """
    p = Path(path).expanduser()
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except OSError as e:
        raise InputError(f"{p}: cannot read ({e.strerror or e})") from None
    except ValueError as e:
        raise InputError(f"{p}: not valid JSON ({e})") from None
    if isinstance(doc, dict) and "messages" in doc:
        doc = doc["messages"]
    conv = parse_messages(doc, where=p.name)
    if not conv.turns:
        raise InputError(f"{p.name}: the conversation has no user message")
    return conv


def conversation_prompt(
    turns: Sequence[Message], *, conversation_id: str | None = None, **fields: Any
) -> Prompt:
    """The :class:`Prompt` that answers the last of ``turns`` (a user message)."""
    if not turns or turns[-1].role != "user":
        raise InputError("the conversation ends with the model's answer: give the next prompt")
    return Prompt(
        turns[-1].content, history=tuple(turns[:-1]), conversation_id=conversation_id, **fields
    )


def user_content(prompt: Prompt, *, image_urls: bool = True) -> str | list[dict[str, Any]]:
    """The last user message's content: the text, or, with images, OpenAI content parts
    (the text part, then one ``image_url`` part per image: its unchanged bytes as a base64
    ``data:`` URL), as servers and llama-cpp-python's multimodal chat handlers take them.
    ``image_urls`` False leaves the URLs out (the bytes travel apart: a local worker)."""
    if not prompt.images:
        return prompt.text
    parts: list[dict[str, Any]] = [{"type": "text", "text": prompt.text}]
    for im in prompt.images:
        part: dict[str, Any] = {"type": "image_url"}
        if image_urls:
            part["image_url"] = {"url": im.data_url()}
        parts.append(part)
    return parts


def request_messages(
    prompt: Prompt, system_prompt: str | None, *, image_urls: bool = True
) -> list[dict[str, Any]]:
    """The messages one chat request sends: the system prompt, the turns before the
    prompt, then the prompt as the last user message (with its images, if any; see
    :func:`user_content`)."""
    out: list[dict[str, Any]] = (
        [{"role": "system", "content": system_prompt}] if system_prompt else []
    )
    out += [m.as_dict() for m in prompt.history]
    out.append({"role": "user", "content": user_content(prompt, image_urls=image_urls)})
    return out


def completion_text(prompt: Prompt, system_prompt: str | None) -> str:
    """What a base model (no chat template) continues: the system prompt and the text,
    blank-line apart; a conversation as a transcript ending where the model speaks."""
    if not prompt.history:
        return f"{system_prompt}\n\n{prompt.text}" if system_prompt else prompt.text
    lines = [system_prompt, ""] if system_prompt else []
    for m in (*prompt.history, Message("user", prompt.text)):
        lines.append(f"{'User' if m.role == 'user' else 'Assistant'}: {m.content}")
    lines.append("Assistant:")
    return "\n".join(lines)


def history_json(prompt: Prompt) -> str | None:
    """The row's ``history``: the turns before the prompt as JSON (None when none)."""
    if not prompt.history:
        return None
    return json.dumps([m.as_dict() for m in prompt.history], ensure_ascii=False)
