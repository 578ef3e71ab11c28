"""The wire: SigV4, the JSON 1.1 protocol, validation against botocore, names, keys."""
