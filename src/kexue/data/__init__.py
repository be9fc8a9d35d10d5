"""Reusable data code: corpus readers, generators, vocabularies (no Kedro wiring)."""
