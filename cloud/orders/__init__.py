"""Delivery-platform orders at the hub: stored once, coded, logged, told back to platforms."""
