"""The audit trail (21 CFR Part 11 / Annex 11): append-only, hash-chained entries with
Ed25519-signed checkpoints. `trail.append` is the one way in; there is no way to switch it off.
"""
