"""Jinja side of templating: the environment transformers uses, and built-in specs exported as Jinja.

We compile chat templates in an environment configured like `transformers` (sandboxed, trim_blocks,
lstrip_blocks, loopcontrols, `raise_exception`, `tojson`, `strftime_now`) so that a template
renders byte-for-byte as `tokenizer.apply_chat_template(..., tokenize=False)` does, without
needing a tokenizer object (custom Jinja from YAML works on its own).
"""
from __future__ import annotations

import json
from datetime import datetime
from functools import lru_cache
from typing import Any

from instructkit.templates.builtin import TemplateSpec


class TemplateRenderError(ValueError):
    """A template refused a conversation (raise_exception in Jinja, or an unsupported role)."""


def _raise(message: str) -> None:
    raise TemplateRenderError(message)


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators=None, sort_keys: bool = False) -> str:
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _generation_extension():
    """`{% generation %}...{% endgeneration %}` (transformers' assistant-mask tag): render the body.

    We get assistant spans another way, but templates written for `return_assistant_tokens_mask`
    must still compile and render identically.
    """
    from jinja2 import nodes
    from jinja2.ext import Extension

    class Generation(Extension):
        tags = {"generation"}

        def parse(self, parser):
            lineno = next(parser.stream).lineno
            body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
            return nodes.Scope(body, lineno=lineno)

    return Generation


@lru_cache(maxsize=64)
def compile_jinja(source: str):
    """Compile once per distinct source (workers call this per batch)."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols, _generation_extension()])
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise
    env.globals["strftime_now"] = lambda fmt: datetime.now().strftime(fmt)
    return env.from_string(source)


def _expr(piece: str) -> str:
    """A piece with {bos}/{eos} placeholders as a Jinja expression using bos_token/eos_token."""
    parts: list[str] = []
    rest = piece
    while rest:
        i_b, i_e = rest.find("{bos}"), rest.find("{eos}")
        hits = [i for i in (i_b, i_e) if i >= 0]
        if not hits:
            parts.append(json.dumps(rest))
            break
        i = min(hits)
        if i:
            parts.append(json.dumps(rest[:i]))
        parts.append("bos_token" if i == i_b else "eos_token")
        rest = rest[i + 5:]
    return " ~ ".join(parts) if parts else '""'


def spec_to_jinja(spec: TemplateSpec, system: str | None, system_mode: str) -> str:
    """Export a built-in layout (with the resolved default/override system prompt) as a chat template.

    Saving this as a tokenizer's `chat_template` makes any inference stack (vLLM, TGI,
    transformers) render exactly what we trained on.
    """
    default = system if system is not None else spec.default_system
    out = [
        "{%- set ns = namespace(sys=none, msgs=messages) -%}",
        "{%- if messages and messages[0]['role'] == 'system' -%}"
        "{%- set ns.sys = messages[0]['content'] -%}{%- set ns.msgs = messages[1:] -%}{%- endif -%}",
    ]
    if default is not None:
        lit = json.dumps(default)
        if system_mode == "override" and system is not None:
            out.append(f"{{%- set ns.sys = {lit} -%}}")
        else:
            out.append(f"{{%- if ns.sys is none -%}}{{%- set ns.sys = {lit} -%}}{{%- endif -%}}")
    if spec.bos:
        out.append("{{- bos_token -}}")
    pre, post = spec.system_format.split("{system}")
    if spec.system_style == "preamble":
        out.append(f"{{%- if ns.sys is not none -%}}{{{{- {_expr(pre)} ~ ns.sys ~ {_expr(post)} -}}}}{{%- endif -%}}")
    elif spec.system_style == "turn":
        sp, ss = spec.roles["system"]
        out.append(f"{{%- if ns.sys is not none -%}}{{{{- {_expr(sp)} ~ ns.sys ~ {_expr(ss)} -}}}}{{%- endif -%}}")
    a_pre, a_eot, a_after = spec.assistant
    if spec.system_style == "merge":
        out.append("{%- if ns.sys is not none and not (ns.msgs and ns.msgs[0]['role'] == 'user') -%}"
                   "{{- raise_exception('the system prompt needs a first user turn to go into') -}}{%- endif -%}")
    out.append("{%- for m in ns.msgs -%}")
    out.append(f"{{%- if m['role'] == 'assistant' -%}}{{{{- {_expr(a_pre)} ~ m['content'] ~ {_expr(a_eot + a_after)} -}}}}")
    for role, (rp, rs) in spec.roles.items():
        merge = ""
        if role == "user" and spec.system_style == "merge":
            merge = (f"{{%- if loop.first and ns.sys is not none -%}}{{{{- {_expr(pre)} ~ ns.sys ~ {_expr(post)} -}}}}"
                     "{%- endif -%}")
        out.append(f"{{%- elif m['role'] == {json.dumps(role)} -%}}{{{{- {_expr(rp)} -}}}}{merge}"
                   f"{{{{- m['content'] ~ {_expr(rs)} -}}}}")
    out.append(f"{{%- else -%}}{{{{- raise_exception({json.dumps('template ' + spec.name + ' does not support role ')}"
               " ~ m['role']) -}}")
    out.append("{%- endif -%}")
    out.append("{%- endfor -%}")
    out.append(f"{{%- if add_generation_prompt -%}}{{{{- {_expr(spec.generation_prompt)} -}}}}{{%- endif -%}}")
    return "\n".join(out)
