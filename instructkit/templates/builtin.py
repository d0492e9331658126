"""Built-in chat templates as data: the pieces of text around each turn.

A template described as pieces (role header before the content, end-of-turn after it) can be
rendered for a whole Arrow batch at once with string columns, and the character span of every
assistant answer is known by construction (we put it there), so loss masks never depend on
searching for token ids. The same spec is also exported as a Jinja chat template
(`ChatTemplate.jinja`), so a tokenizer saved with it renders identically at inference time.

`{bos}` and `{eos}` in a piece are replaced by the tokenizer's BOS/EOS text when a tokenizer is
given, else by the template's own defaults.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class TemplateSpec:
    """One chat layout.

    system_style:
      ``turn``      the system prompt is a turn like any other (ChatML, Llama 3, Zephyr);
      ``merge``     it is written inside the first user turn, before the content (Llama 2, Mistral, Gemma);
      ``preamble``  it is written once at the top, before the first turn (Alpaca, Vicuna).
    """

    name: str
    roles: dict[str, tuple[str, str]]  # role -> (before content, after content) for non-assistant roles
    assistant: tuple[str, str, str]  # (before content, end-of-turn [trained], after [not trained])
    generation_prompt: str
    bos: bool = False  # write the BOS text at the very start
    system_style: str = "turn"
    system_format: str = "{system}"  # for merge/preamble: how the system text is wrapped
    default_system: str | None = None
    default_bos: str = "<s>"
    default_eos: str = "</s>"
    description: str = ""
    aliases: tuple[str, ...] = field(default_factory=tuple)


def _header(fmt: str, roles: tuple[str, ...], suffix: str) -> dict[str, tuple[str, str]]:
    return {r: (fmt.format(role=r), suffix) for r in roles}


CHATML = TemplateSpec(
    name="chatml",
    roles=_header("<|im_start|>{role}\n", ("system", "user", "tool"), "<|im_end|>\n"),
    assistant=("<|im_start|>assistant\n", "<|im_end|>", "\n"),
    generation_prompt="<|im_start|>assistant\n",
    default_eos="<|im_end|>",
    description="OpenAI ChatML (Qwen, Hermes, many fine-tunes): <|im_start|>role ... <|im_end|>",
)

LLAMA3 = TemplateSpec(
    name="llama3",
    roles={
        "system": ("<|start_header_id|>system<|end_header_id|>\n\n", "<|eot_id|>"),
        "user": ("<|start_header_id|>user<|end_header_id|>\n\n", "<|eot_id|>"),
        "tool": ("<|start_header_id|>ipython<|end_header_id|>\n\n", "<|eot_id|>"),
    },
    assistant=("<|start_header_id|>assistant<|end_header_id|>\n\n", "<|eot_id|>", ""),
    generation_prompt="<|start_header_id|>assistant<|end_header_id|>\n\n",
    bos=True,
    default_bos="<|begin_of_text|>",
    default_eos="<|eot_id|>",
    description="Meta Llama 3 / 3.1 header layout (tool results use the ipython role); contents are not trimmed",
)

ALPACA = TemplateSpec(
    name="alpaca",
    roles={"user": ("### Instruction:\n", "\n\n")},
    assistant=("### Response:\n", "{eos}", "\n\n"),
    generation_prompt="### Response:\n",
    bos=True,
    system_style="preamble",
    system_format="{system}\n\n",
    default_system=(
        "Below is an instruction that describes a task. Write a response that appropriately completes the request."
    ),
    description="Stanford Alpaca prompt (instruction and input are already joined in the user turn)",
)

VICUNA = TemplateSpec(
    name="vicuna",
    roles={"user": ("USER: ", " ")},
    assistant=("ASSISTANT: ", "{eos}", ""),
    generation_prompt="ASSISTANT:",
    bos=True,
    system_style="preamble",
    system_format="{system} ",
    default_system=(
        "A chat between a curious user and an artificial intelligence assistant. "
        "The assistant gives helpful, detailed, and polite answers to the user's questions."
    ),
    description="Vicuna v1.1 (FastChat) layout",
)

LLAMA2 = TemplateSpec(
    name="llama2",
    roles={"user": ("[INST] ", " [/INST]")},
    assistant=(" ", " {eos}", ""),
    generation_prompt="",
    bos=True,
    system_style="merge",
    system_format="<<SYS>>\n{system}\n<</SYS>>\n\n",
    description="Llama 2 chat [INST] layout; one BOS at the start (Meta's reference repeats it per turn)",
)

MISTRAL = TemplateSpec(
    name="mistral",
    roles={"user": ("[INST] ", " [/INST]")},
    assistant=("", "{eos}", ""),
    generation_prompt="",
    bos=True,
    system_style="merge",
    system_format="{system}\n\n",
    description="Mistral instruct [INST] layout (system prompt prepended to the first user turn)",
)

ZEPHYR = TemplateSpec(
    name="zephyr",
    roles=_header("<|{role}|>\n", ("system", "user"), "{eos}\n"),
    assistant=("<|assistant|>\n", "{eos}", "\n"),
    generation_prompt="<|assistant|>\n",
    description="HuggingFace Zephyr layout: <|role|> headers, EOS after every turn",
)

GEMMA = TemplateSpec(
    name="gemma",
    roles={"user": ("<start_of_turn>user\n", "<end_of_turn>\n")},
    assistant=("<start_of_turn>model\n", "<end_of_turn>", "\n"),
    generation_prompt="<start_of_turn>model\n",
    bos=True,
    system_style="merge",
    system_format="{system}\n\n",
    default_bos="<bos>",
    default_eos="<eos>",
    description="Google Gemma turns (the model role is 'model'; system text goes into the first user turn)",
)

PLAIN = TemplateSpec(
    name="plain",
    roles={"system": ("System: ", "\n"), "user": ("User: ", "\n"), "tool": ("Tool: ", "\n")},
    assistant=("Assistant: ", "{eos}", "\n"),
    generation_prompt="Assistant:",
    description="'Role: content' lines; what base models without a chat template see at evaluation",
)

BUILTIN: dict[str, TemplateSpec] = {
    s.name: s for s in (CHATML, LLAMA3, ALPACA, VICUNA, LLAMA2, MISTRAL, ZEPHYR, GEMMA, PLAIN)
}
ALIASES = {"llama-3": "llama3", "llama-2": "llama2", "inst": "mistral", "qwen": "chatml"}
