"""The tamper-evident audit trail: typed records, a hash chain with signed checkpoints,
append-only segment files, verification, queries and transparency reports."""
