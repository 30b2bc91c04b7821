"""Inspection records (practice 2: one per host per scan, made when its scan log is stored):
assembling, remarks, e-signatures bound to the record's hash (21 CFR Part 11 §11.50, §11.70,
§11.200), verification and printing (HTML/PDF)."""
