"""The face engine: pixels -> faces -> vectors. Imports nothing from wire/ops/policy/store."""
