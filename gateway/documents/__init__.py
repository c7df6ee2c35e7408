"""Encrypted documents: envelope encryption, streaming AEAD, blob storage."""
