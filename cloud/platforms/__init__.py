"""Delivery platforms: one adapter per platform (registry.py lists them)."""
