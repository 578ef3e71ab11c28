"""The operators' side of facegate: the admin API under ``/admin`` and what backs it.

* :mod:`~facegate.admin.auth`     operator bearer tokens: minting, hashing, authenticating, roles
* :mod:`~facegate.admin.service`  organisations, keys, operators, policies, decisions, reviews
                                  as plain Python over the store (no HTTP); the CLI uses it too;
                                  one module per resource (``service/orgs.py``, ``keys.py``...)
* :mod:`~facegate.admin.fields`   reading JSON bodies and query strings with errors naming fields
* :mod:`~facegate.admin.views`    records -> JSON documents (never a secret, hash or vector)
* :mod:`~facegate.admin.routes`   the Starlette routes (JSON in and out, bounded bodies)
* :mod:`~facegate.admin.openapi`  the OpenAPI 3.1 document of those routes
* :mod:`~facegate.admin.sweeper`  the background task that enforces retention and expires reviews
"""
