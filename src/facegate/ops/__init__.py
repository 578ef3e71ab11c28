"""Rekognition operations: each takes validated parameters and returns a response dataclass."""
