"""The tamper-evident ledger: Merkle maths, formats, storage, sequencer and proofs."""
