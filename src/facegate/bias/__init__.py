"""Accuracy and bias audits: datasets, descriptors, error rates per group, reports.

The server never imports this package (an import-linter contract in pyproject.toml checks it).
"""
