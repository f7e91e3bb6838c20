"""Which store a platform's shop is, and what the hub.yaml says about each store's orders."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from cloud.config import PLATFORM_NAMES, StoreEntry
from cloud.platforms.base import OrderItem


class StoreDirectory:
    def __init__(self, stores: Sequence[StoreEntry]) -> None:
        self._stores = {s.id: s for s in stores}
        self._by_shop: dict[tuple[str, str], StoreEntry] = {}
        for store in stores:
            for platform in PLATFORM_NAMES:
                shop = getattr(store.platforms, platform)
                if shop is not None:
                    self._by_shop.setdefault((platform, shop), store)

    def store_for(self, platform: str, shop_id: str) -> StoreEntry | None:
        return self._by_shop.get((platform, shop_id))

    def get(self, store_id: str) -> StoreEntry | None:
        return self._stores.get(store_id)

    def shop_of(self, store_id: str, platform: str) -> str | None:
        store = self._stores.get(store_id)
        return None if store is None else getattr(store.platforms, platform, None)

    def auto_accept(self, store_id: str) -> bool:
        store = self._stores.get(store_id)
        return store is not None and store.auto_accept

    def with_shelves(self, store_id: str, items: Sequence[OrderItem]) -> tuple[OrderItem, ...]:
        """Items with their shelf: the platform's when it gave one, else the store's
        `shelves` map (by barcode, then by sku), else none."""
        store = self._stores.get(store_id)
        shelves = store.shelves if store is not None else {}
        out = []
        for item in items:
            shelf = item.shelf or shelves.get(item.barcode, "") or shelves.get(item.sku, "")
            out.append(item if shelf == item.shelf else replace(item, shelf=shelf))
        return tuple(out)
