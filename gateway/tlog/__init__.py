"""Pure transparency-log formats: RFC 9162 Merkle maths, C2SP signed notes, checkpoints,
tiles, tlog-proof receipts and the tlog-witness bodies.

Standard library plus ``cryptography``; nothing here knows storage, HTTP or the
gateway. Every error is a :class:`gateway.tlog.errors.FormatError`.
"""
