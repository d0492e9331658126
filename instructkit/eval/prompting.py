"""Turn a user message into the inference prompt of the model being evaluated.

Instruction-tuned models must be evaluated with the same chat template they were trained with, so
this delegates to `instructkit.templates.load_template` (the templating module: a named built-in,
else the tokenizer's own chat_template, else `plain`). `render_plain` is a minimal stand-in kept
for environments where that module cannot be imported.
"""
from __future__ import annotations

from typing import Any

PLAIN_ROLES = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


def render_plain(messages: list[dict[str, str]], add_generation_prompt: bool = True) -> str:
    text = "\n".join(f"{PLAIN_ROLES.get(m['role'], m['role'].title())}: {m['content']}" for m in messages)
    return text + ("\nAssistant:" if add_generation_prompt else "")


class ChatPrompter:
    """Renders messages to a prompt string with one chosen template (resolved once)."""

    def __init__(self, tokenizer: Any = None, template: str | None = None, system: str | None = None):
        self.system = system
        self._render = None
        self.name = "plain"
        try:
            from instructkit.templates import load_template  # type: ignore[attr-defined]
        except ImportError:
            load_template = None
        if load_template is not None:
            tpl = load_template(template, tokenizer=tokenizer, system=system)
            self._render = lambda msgs: tpl.render(msgs, add_generation_prompt=True)
            self.name = getattr(tpl, "name", template or "tokenizer")
        elif template is None and tokenizer is not None and getattr(tokenizer, "chat_template", None):
            self._render = lambda msgs: tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)
            self.name = "tokenizer"
        elif template not in (None, "plain"):
            from instructkit.errors import ConfigError
            raise ConfigError(f"--template {template!r}: instructkit.templates is not available, only 'plain' works")

    def __call__(self, user: str) -> str:
        messages = ([{"role": "system", "content": self.system}] if self.system else [])
        messages.append({"role": "user", "content": user})
        return self.render(messages)

    def render(self, messages: list[dict[str, str]]) -> str:
        if self._render is None:
            return render_plain(messages)
        return self._render(messages)
