"""Ledger audit: recompute the stored tree and check every checkpoint."""
