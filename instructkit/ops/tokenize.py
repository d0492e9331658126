"""`tokenize` (template + tokenize + loss mask) and `template` (rendered text only) operators.

The batch engine lives in `instructkit.templates.tokenization` (so pool workers do not import
every operator); this module exposes it under the operator names and re-exports its API.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from instructkit.errors import ConfigError
from instructkit.ops.base import Decision, Operator, register
from instructkit.templates import TRAIN_ON, ChatTemplate, load_template, load_tokenizer
from instructkit.templates.tokenization import (  # noqa: F401  (public API re-exported)
    IGNORE_INDEX,
    POLICIES,
    TOKEN_COLUMNS,
    TokenizedBatch,
    _set,
    bos_id_if_added,
    enlarge_bpe_cache,
    tokenize_batch,
    tokenize_parallel,
    tokenize_table,
)


# ---------------------------------------------------------------- operators
def _template_kwargs(op: Any) -> dict[str, Any]:
    return {"name": op.template, "jinja": op.chat_template, "system": op.system, "system_mode": op.system_mode}


def _check_common(op: Any, where: str) -> None:
    if not op.tokenizer:
        raise ValueError("option 'tokenizer' (a local tokenizer directory) is required")
    from instructkit.templates import SYSTEM_MODES

    if op.system_mode not in SYSTEM_MODES:
        raise ValueError(f"system_mode must be one of {', '.join(SYSTEM_MODES)}, got {op.system_mode!r}")
    if op.template is not None and op.chat_template is not None:
        raise ValueError("give either 'template' (a built-in name) or 'chat_template' (Jinja), not both")


def _resolve(op: Any, where: str) -> tuple[Any, ChatTemplate]:
    tok = load_tokenizer(op.tokenizer)
    if op.template is None and op.chat_template is None and not getattr(tok, "chat_template", None):
        raise ConfigError(f"{where}: tokenizer {op.tokenizer!r} has no chat_template; set 'template' to one of "
                          "chatml, llama3, alpaca, vicuna, mistral, llama2, zephyr, gemma, plain "
                          "or give 'chat_template' (Jinja)")
    return tok, load_template(tokenizer=tok, **_template_kwargs(op))


@register
@dataclass
class Tokenize(Operator):
    """Render with the chat template, tokenize, and build labels (-100 outside trained answers).

    Rows that cannot be trained on are rejected with a reason: `template_unsupported_role`,
    `template_error`, `empty_label_mask`, `truncated_no_labels`, `too_long` (policy drop),
    `bos_count`.
    """

    name = "tokenize"
    kind = "filter"
    reads = ("messages",)
    writes = TOKEN_COLUMNS

    tokenizer: str = ""  # local tokenizer directory
    template: str | None = None  # built-in name; None = the tokenizer's chat_template
    chat_template: str | None = None  # custom Jinja string
    system: str | None = None
    system_mode: str = "default"  # default (only when the row has none) | override
    train_on: str = "assistant"  # assistant | last_assistant | all
    max_length: int | None = None
    policy: str = "truncate"  # truncate | drop

    def __post_init__(self) -> None:
        _check_common(self, "tokenize")
        if self.train_on not in TRAIN_ON:
            raise ValueError(f"train_on must be one of {', '.join(TRAIN_ON)}, got {self.train_on!r}")
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {', '.join(POLICIES)}, got {self.policy!r}")
        if self.max_length is not None and self.max_length < 2:
            raise ValueError(f"max_length must be >= 2, got {self.max_length}")
        self._tok: Any = None
        self._tpl: ChatTemplate | None = None

    def setup(self) -> None:
        self._tok, self._tpl = _resolve(self, "steps.tokenize")
        enlarge_bpe_cache(self._tok)

    def process(self, batch: pa.Table) -> Decision:
        if self._tpl is None:
            self.setup()
        res = tokenize_batch(batch, self._tpl, self._tok, max_length=self.max_length, train_on=self.train_on,
                             policy=self.policy)
        return Decision(table=res.table, reason=res.reason, detail=res.detail)

    def __getstate__(self) -> dict[str, Any]:  # workers load their own tokenizer in setup()
        state = dict(self.__dict__)
        state["_tok"] = None
        state["_tpl"] = None
        return state


@register
@dataclass
class Template(Operator):
    """Write the rendered conversation to a `text` column (inspection, or pretraining-style data).

    `tokenize` renders by itself; use this when you want the text in the output too.
    """

    name = "template"
    kind = "map"
    reads = ("messages",)
    writes = ("text",)

    tokenizer: str | None = None  # optional: BOS/EOS text and the tokenizer's chat_template
    template: str | None = None
    chat_template: str | None = None
    system: str | None = None
    system_mode: str = "default"

    def __post_init__(self) -> None:
        if self.template is not None and self.chat_template is not None:
            raise ValueError("give either 'template' (a built-in name) or 'chat_template' (Jinja), not both")
        self._tpl: ChatTemplate | None = None

    def setup(self) -> None:
        tok = load_tokenizer(self.tokenizer) if self.tokenizer else None
        if self.template is None and self.chat_template is None and not getattr(tok, "chat_template", None):
            raise ConfigError("steps.template: no template: set 'template' (built-in name), 'chat_template' (Jinja) "
                              "or a 'tokenizer' that has a chat_template")
        self._tpl = load_template(tokenizer=tok, **_template_kwargs(self))

    def process(self, batch: pa.Table) -> Decision:
        if self._tpl is None:
            self.setup()
        rendered = self._tpl.render_batch(batch.column("messages"))
        out = _set(batch, "text", pa.array(rendered.texts, pa.string()))
        return Decision(table=out, reason=pa.array(rendered.reason, pa.string()),
                        detail=pa.array(rendered.detail, pa.string()))

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_tpl"] = None
        return state
