"""The synthetic shop: a deterministic e-commerce source (see generator.py)."""

from include.lakehouse.shop.generator import ShopSource

__all__ = ["ShopSource"]
