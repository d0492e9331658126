"""IFEval: 25 verifiable-instruction checkers and the four official scores, no NLTK download."""
from instructkit.eval.ifeval.checkers import CHECKERS, check
from instructkit.eval.ifeval.scoring import IFEvalPrompt, follows, load_prompts, score

__all__ = ["CHECKERS", "IFEvalPrompt", "check", "follows", "load_prompts", "score"]
