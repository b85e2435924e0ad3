"""How leaves are laid out for speed: flat buckets (:class:`Layout`), optimizers that run
on them (:func:`bucketed`), and params kept packed (:func:`pack`)."""

from jopt.core.packing import Layout, Place
from jopt.layout.bucketed import Bucketed, BucketedState, bucketed
from jopt.layout.packed import Packed, pack

__all__ = ["Bucketed", "BucketedState", "Layout", "Packed", "Place", "bucketed", "pack"]
