"""Shared formulas, one place each; every optimizer is a composition of these."""
