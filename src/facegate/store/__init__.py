"""Persistence: collections, faces, users, tags, keys (SQLite) and the in-memory vector index."""
