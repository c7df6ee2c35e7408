"""Custody rules: declarative rules for custody chains, checked when a link is anchored."""
