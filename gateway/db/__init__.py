"""Database plumbing: Tortoise set-up, transactions, SQL placeholders, outage detection."""
