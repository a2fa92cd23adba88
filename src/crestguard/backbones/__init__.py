"""Encoders: the offline ``me5-small-q4`` and any Hugging Face encoder, with pooling."""

from crestguard.backbones.pooling import mean_pool, pool
from crestguard.backbones.registry import DEFAULT_BACKBONE, Backbone, BackboneInfo, list_backbones, load_backbone

__all__ = ["Backbone", "BackboneInfo", "DEFAULT_BACKBONE", "list_backbones", "load_backbone", "mean_pool", "pool"]
