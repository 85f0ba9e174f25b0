"""Faults of the stow checks (see tests/faults/__init__.py)."""

from __future__ import annotations
