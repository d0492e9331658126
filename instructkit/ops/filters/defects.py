"""Known defects of machine-generated instruction data (the Alpaca family and its imitators).

Self-instruct style sets were produced by prompting a completion model with "Instruction / Input /
Output" scaffolds; the same failure modes recur in every one of them and were documented by the
public Alpaca clean-up: empty or `<nooutput>` answers, `N/A` inputs, inputs that point at a URL or
an attached picture the model never saw, requests to draw images, the scaffold of the *next*
example leaking into an answer, "as an AI language model" refusals, answers that just repeat the
question, and answers cut off by the generation limit.

Each defect is a boolean over the batch computed with Polars' vectorized regex kernels (no
per-row Python); the column `defect_flags` lists every defect found, and the row is dropped for
the first flag in `DEFECTS` order that is in `drop`. Precision of every pattern was measured by
hand on Alpaca 52k (docs/benchmarks/filters.md); change them there first.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl
import pyarrow as pa

from instructkit.ops.base import Decision, Operator, register
from instructkit.ops.filters._text import details, flag_lists, role_views, set_columns

#: Reason codes in priority order (the first raised one becomes the row's reject reason).
DEFECTS = (
    "empty_output",
    "placeholder_output",
    "placeholder_input",
    "media_reference",
    "image_generation",
    "merged_instructions",
    "refusal",
    "echo",
    "truncated",
    "control_chars",
)

_PLACEHOLDER_OUT = (
    r"(?i)^\s*(<\s*no[\s_-]*output\b|no output\b|\(\s*no output\s*\))"
    r"|(?i)^\W*(n/?a|not applicable|null|nil|<\s*(empty|blank|none|output)\s*>)\W*$"
)
_NONE_OUT = r"(?i)^\W*none\W*$"
_PLACEHOLDER_IN = (
    r"(?i)(^|\n\n)\s*(<\s*no[\s_-]*input\s*>|n/?a|none|null|nil|no input|not applicable|\(\s*none\s*\)|-)\s*\.?\s*$"
)
_MEDIA_WORDS = (
    r"(image|picture|photo(graph)?|video|audio( clip| file)?|sound( clip)?|painting|drawing|diagram|chart|graph|"
    r"screenshot|recording|artwork|illustration|scan|map)"
)
_MEDIA_PLACEHOLDER = "|".join([
    r"(?i)<\s*" + _MEDIA_WORDS + r"[^>]{0,40}>",
    r"(?i)\[\s*(insert|attached|attach|upload|link to)?\s*" + _MEDIA_WORDS + r"[^\]]{0,40}\]",
    r"(?i)\b" + _MEDIA_WORDS + r"s?\s+(is\s+|are\s+)?attached\b",
    r"(?i)\battached\s+" + _MEDIA_WORDS,
    r"!\[[^\]]*\]\(",
])
_MEDIA_PHRASE = "|".join([
    r"(?i)\b" + _MEDIA_WORDS + r"s?\s+(is\s+|are\s+)?(below|above|shown)\b",
    r"(?i)\b(this|these|the (given|following|provided|attached))\s+" + _MEDIA_WORDS + r"s?\b",
])
#: The "photo" is given as text ("Photo of a girl in a field", a quoted famous title): nothing is missing.
_DESCRIBED_MEDIA = (
    r"(?i)\n\n\s*(an?\s+)?(photo(graph)?|image|picture|painting|drawing|screenshots?)s?\s*(of|showing|:)\s|"
    r"\n\n\s*[\"“][^\"”\n]{2,80}[\"”]\s*(by\s+[^\n]{2,40})?\s*$"
)
_URL = r"(?i)https?://\S+|\bwww\.\S+"
_URL_CONTENT_TASK = (
    r"(?i)\b(summar|article|web ?site|web ?page|blog|visit|watch|listen|video|audio|podcast|song|image|photo|"
    r"picture|read|review|content|post|analy[sz]|describe|tweet|news|story|paper|report|page|recipe)"
)
_URL_STRING_TASK = (
    r"(?i)\b(html|css|code|url|urls|link|links|hyperlink|domain|regex|regular expression|parse|bookmark|shorten|"
    r"api|request|script|program|function|javascript|python|sql|json|xml|valid|markdown|button|anchor)\b"
)
_IMAGE_GEN = (
    r"(?i)^\W*(please\s+)?((generate|create|draw|design|paint|sketch|produce|make|render|construct|illustrate|build)\b"
    r"[^\n.?]{0,60}?\b(image|picture|drawing|painting|sketch|logo|illustration|photo(graph)?|poster|graphic|"
    r"visuali[sz]ation|visual|icon|banner|cartoon|comic|infographic|diagram|chart|graph|flow ?chart|plot|mock-?up|"
    r"wireframe|collage|meme|gif|artwork|portrait|animation|storyboard)s?\b"
    r"|(draw|paint|sketch)\b)"
)
_NOT_IMAGE_GEN = (
    r"(?i)\b(ascii|text-based|svg|html|css|code|python|matplotlib|table|description|describe|caption|title|slogan|"
    r"tagline|prompt|name|data structure|nodes?|edges?|adjacency|conclusion|inference|comparison|parallel|analogy|"
    r"story|poem|list|plan|outline|ideas?|character sketch|biographical sketch|web ?page|website|interface|"
    r"compar\w*|advantages|disadvantages|pros and cons|benefits)\b"
)
_MERGED_NUMBERED = r"(?im)^\s*\d+\s*[.)]\s*(instruction|input|output)\s*:|<\s*no\s*input\s*>"
_MERGED_SCAFFOLD = r"(?im)^\s*(#+\s*)?(instruction|input)\s*:"
#: Tasks that legitimately answer with "Input:/Output:" lines (make up an example, write test cases, code).
_ASKS_FOR_IO = (
    r"(?i)\b(inputs?|outputs?|instructions?|tasks?|prompts?|tests?|test cases?|examples?|functions?|algorithms?|"
    r"programs?|code|script|pseudo-?code)\b"
)
_REFUSAL = "|".join([
    r"(?i)\bas an ai\b",
    r"(?i)\bas a (large )?language model\b",
    r"(?i)\bai language model\b",
    r"(?i)\b(gpt|language|ai|text-based) models?\b[^\n]{0,60}\b(cannot|can ?not|can't|unable|not able|not designed|"
    r"not capable|limitation|limited)\b",
    r"(?i)\b(cannot|can ?not|can't|unable to|not able to|not possible (for me )?to)\b[^\n]{0,80}\b(gpt|language model|"
    r"ai model|as an ai|text-based)\b",
    r"(?i)\bdue to the limitations?\b",
    r"(?i)\bbeyond (my|the) (capabilit|scope of (my|this))",
    r"(?i)\bi (do not|don't) have (the ability|access to the internet|the capability)",
])
_ABOUT_AI = r"(?i)\b(gpt|language models?|ai|artificial intelligence|chatbots?|conversational|assistant|turing)\b"
#: Ends on a comma or a word that cannot end an English sentence: the generation limit cut it off.
_TRUNC_END = (
    r"(,|\b(the|a|an|and|or|of|to|with|for|in|on|that|which|is|are|was|were|by|as|at|from|their|his|her|its|"
    r"our|your|this|these|be|will|can|but|because|such|including|into|than|who|whose|whom))\s*$"
)
_LIST_OR_CODE_LAST_LINE = r"^\s*([-*•#>|/]|\d+\s*[.):]|[\w ]{1,20}:\s)|[{};=]|#\w+\s*$"
_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\x{fffd}]"


def _norm(expr: pl.Expr) -> pl.Expr:
    """Lower-case, punctuation-free form used to compare prompt and answer."""
    return expr.str.to_lowercase().str.replace_all(r"[^\p{L}\p{N}]+", " ").str.strip_chars()


def defect_masks(views: pl.DataFrame, min_truncated_words: int = 20) -> pl.DataFrame:
    """One boolean column per defect (all evaluated by Polars on the whole batch)."""
    user, first_user = pl.col("user"), pl.col("first_user")
    out, last = pl.col("assistant"), pl.col("last_assistant")
    out_trim = last.str.strip_chars()
    instruction = first_user.str.split("\n\n").list.first().fill_null("")
    last_line = out_trim.str.split("\n").list.last().fill_null("")
    exprs = {
        "empty_output": out_trim.str.len_chars() == 0,
        "placeholder_output": out_trim.str.contains(_PLACEHOLDER_OUT)
        | (out_trim.str.contains(_NONE_OUT) & ~user.str.contains(r"(?i)\bnone\b")),
        "placeholder_input": first_user.str.contains(_PLACEHOLDER_IN),
        "media_reference": user.str.contains(_MEDIA_PLACEHOLDER)
        | (user.str.contains(_MEDIA_PHRASE) & ~first_user.str.contains(_DESCRIBED_MEDIA))
        | (user.str.contains(_URL) & instruction.str.contains(_URL_CONTENT_TASK)
           & ~instruction.str.contains(_URL_STRING_TASK)),
        "image_generation": instruction.str.contains(_IMAGE_GEN) & ~instruction.str.contains(_NOT_IMAGE_GEN),
        "merged_instructions": out.str.contains(_MERGED_NUMBERED)
        | (out.str.contains(_MERGED_SCAFFOLD) & ~user.str.contains(_ASKS_FOR_IO)),
        # Questions *about* AI/GPT models get answers that talk about what models cannot do.
        "refusal": out.str.contains(_REFUSAL) & ~user.str.contains(_ABOUT_AI),
        "echo": (_norm(last).str.len_chars() > 0)
        & ((_norm(last) == _norm(first_user)) | ((_norm(last) == _norm(instruction)) & (instruction.str.len_chars() >= 15))),
        "truncated": (out.str.count_matches("```") % 2 == 1)
        | (out_trim.str.contains(_TRUNC_END)
           & (out_trim.str.count_matches(r"\S+") >= min_truncated_words)
           & (last_line.str.count_matches(r"\S+") >= 8)
           & ~last_line.str.contains(_LIST_OR_CODE_LAST_LINE)),
        "control_chars": user.str.contains(_CONTROL) | out.str.contains(_CONTROL),
    }
    res = views.select(**{k: v.fill_null(False) for k, v in exprs.items()})
    # An empty answer is not also "truncated"/"echo": keep the flags specific.
    empty = res["empty_output"]
    return res.with_columns(pl.when(empty).then(False).otherwise(pl.col(c)).alias(c)
                            for c in ("truncated", "echo", "placeholder_output"))


@register
@dataclass
class InstructionDefects(Operator):
    """Flag (column `defect_flags`) and drop rows with known instruction-data defects.

    `drop` lists the defects that reject a row (default: all of `DEFECTS`); the others are only
    flagged, so thresholds and choices can be revisited from the annotated output.
    """

    name = "instruction_defects"
    kind = "filter"
    writes = ("defect_flags",)

    drop: list = field(default_factory=lambda: list(DEFECTS))
    min_truncated_words: int = 20

    def __post_init__(self) -> None:
        if not isinstance(self.drop, list):
            raise ValueError(f"drop must be a list of defect names, got {self.drop!r}")
        unknown = sorted(set(self.drop) - set(DEFECTS))
        if unknown:
            raise ValueError(f"drop: unknown defect {unknown[0]!r} (expected some of: {', '.join(DEFECTS)})")

    def process(self, batch: pa.Table) -> Decision:
        n = batch.num_rows
        masks = defect_masks(role_views(batch), self.min_truncated_words)
        flags = {k: masks[k].to_numpy() for k in DEFECTS}
        lists, _ = flag_lists(flags, n)
        dropping = {k: v for k, v in flags.items() if k in self.drop}
        _, reason = flag_lists(dropping, n)
        out = set_columns(batch, {"defect_flags": lists})
        keep = reason == None  # noqa: E711 - elementwise on object array
        return Decision.from_mask(out, keep, reason, details({"defect_flags": lists.to_pylist()}, ~keep))
