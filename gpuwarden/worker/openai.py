"""The worker's OpenAI-compatible completions endpoint, as vLLM and SGLang serve it.

The "language model" behind it is deliberately trivial and deterministic: it echoes the prompt's text
after its last colon ("Repeat exactly: gpuwarden canary" → "gpuwarden canary"), up to `max_tokens` words.
That is enough for the engine probe's openai protocol to have a known answer, and for the fault injection
(errors, latency, hang, wrong) to act on OpenAI traffic the way it acts on KServe traffic.
"""

from __future__ import annotations

import json
import time
from typing import Any

from gpuwarden.worker.model import MODEL_NAME


def models() -> dict[str, Any]:
    return {"object": "list", "data": [{"id": MODEL_NAME, "object": "model", "owned_by": "gpuwarden"}]}


def parse_completion(body: bytes) -> tuple[str, int]:
    """(prompt, max_tokens) of a /v1/completions request; ValueError says what is wrong."""
    try:
        request = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser's stack
        raise ValueError("request body is not JSON") from None
    if not isinstance(request, dict):
        raise ValueError("request body must be a JSON object")
    if request.get("model") != MODEL_NAME:
        raise ValueError(f"model must be '{MODEL_NAME}'")
    prompt, max_tokens = request.get("prompt"), request.get("max_tokens", 16)
    if not isinstance(prompt, str):
        raise ValueError("prompt must be a string")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise ValueError("max_tokens must be a positive integer")
    return prompt, max_tokens


def complete(prompt: str, max_tokens: int, wrong: bool) -> dict[str, Any]:
    words = prompt.rsplit(":", 1)[-1].split()[:max_tokens]
    if wrong:  # silent corruption: fluent-looking, wrong text
        words = [w[::-1] for w in words]
    text = " " + " ".join(words)
    return {
        "id": f"cmpl-{time.monotonic_ns()}",
        "object": "text_completion",
        "created": int(time.time()),
        "model": MODEL_NAME,
        "choices": [{"index": 0, "text": text, "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": len(prompt.split()), "completion_tokens": len(words)},
    }
