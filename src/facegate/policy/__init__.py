"""Governance in the request path: Cedar policies decide every Rekognition call.

* :mod:`facegate.policy.model` / :mod:`facegate.policy.vocabulary`: what is asked and answered.
* :mod:`facegate.policy.engine`: :class:`~facegate.policy.engine.PolicyEngine` loads policy packs
  (``packs/<name>/policies.cedar``), validates them against ``schema.cedarschema`` once, and
  decides :class:`~facegate.policy.model.PolicyRequest` s.
* :mod:`facegate.policy.loader`: reading a pack (parse, annotation rules, schema validation).
* :mod:`facegate.policy.entities`: a PolicyRequest as Cedar request and entities.
* :mod:`facegate.policy.actions`: the 21 operations as Cedar actions and their groups.
* :mod:`facegate.policy.obligations`: what an Allow demands (Cedar annotations on permits).
* :mod:`facegate.policy.fixtures`: each pack's ALLOW/DENY request fixtures and their checking.
* :mod:`facegate.policy.errors`: its errors (a pack that cannot load, a malformed fixture).
* ``packs/README.md``: how to write a pack; each ``packs/<name>/README.md``: what it encodes.

This package imports only the standard library, cedarpy and :mod:`facegate.errors`.
"""
