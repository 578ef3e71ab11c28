"""facegate: a self-hosted, Rekognition-compatible face recognition service with governance."""

__version__ = "0.1.0"
