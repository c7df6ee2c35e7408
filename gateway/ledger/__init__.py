"""The tamper-evident log service: entries, storage, the sequencer and leadership, reads
and proofs over HTTP, witnessing (cosignature rounds, finality) and the audit
(``audit/``). The pure formats it speaks (Merkle maths, notes, checkpoints, tiles,
receipts, the witness protocol) are in ``gateway/tlog/``.
"""
