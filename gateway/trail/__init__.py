"""The access trail for security officers: filter, page and export access decisions."""
