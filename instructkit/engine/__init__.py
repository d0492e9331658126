"""Engines run a pipeline's operators: `local` (one machine, streaming) and `ray` (Ray Data)."""
