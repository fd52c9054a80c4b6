"""Serving performance: `sparkctl advise` (a first-principles estimate per layout) and `sparkctl bench
serve` (a load sweep against a deployed OpenAI-compatible endpoint)."""
