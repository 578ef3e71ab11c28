"""Accuracy and bias audits: datasets, descriptors, metrics, reports.

The server never imports this package (an import-linter contract in pyproject.toml checks it).
"""
