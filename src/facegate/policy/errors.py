"""Errors of the policy package, in facegate's one hierarchy.

Both are configuration errors on the operator's side, never the caller's: if one reaches the wire
it is an ``InternalServerError`` (the service fails closed rather than run without its policies).
"""

from __future__ import annotations

from facegate.errors import FacegateError


class PolicyLoadError(FacegateError):
    """A policy pack, the schema or a policy in it cannot be used.

    The message names the pack, the file and the problem on one line, for example
    ``pack 'eu-ai-act-art5' (.../policies.cedar, line 12): policy 'x': unknown annotation @foo``.
    Loading is all-or-nothing: no engine is built from a set with any error.
    """


class FixtureError(FacegateError):
    """A request fixture (or an ``explain --request`` file) is not valid JSON of the fixture
    format; the message names the file and the field."""
