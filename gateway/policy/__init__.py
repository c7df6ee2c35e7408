"""Clearance policy: labels, clearances and the one policy decision point."""
