"""Faults of the wado checks (see tests/faults/__init__.py)."""

from __future__ import annotations
