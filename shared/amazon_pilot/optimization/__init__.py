"""Optimization: the listing score, ranked suggestions (rules, then the model's copy) and
before/after experiments on a seller's tracked products."""
