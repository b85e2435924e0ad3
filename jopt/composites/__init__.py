"""Transformations made of others: chain, partition, the non-finite and loss-scale
wrappers, and what they share (delegation to their members)."""
