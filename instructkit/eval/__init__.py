"""Benchmark evaluation: IFEval, multiple-choice log-likelihood, exact-match generation, held-out loss."""
