"""Counts in command-line output, in English that agrees with the number."""

from __future__ import annotations


def count_of(number: int, singular: str, plural: str | None = None) -> str:
    """``1 checkpoint``, ``2 checkpoints``, ``1 data key``; ``plural`` for irregular words."""
    word = singular if number == 1 else (plural or singular + "s")
    return f"{number} {word}"
