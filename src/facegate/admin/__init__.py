"""The operators' side of facegate: the admin API under ``/admin`` and what backs it.

* :mod:`~facegate.admin.auth`       operator bearer tokens: minting, hashing, authenticating,
                                    roles
* :mod:`~facegate.admin.service`    organisations, keys, operators, policies, decisions, reviews
                                    as plain Python over the store (no HTTP); the CLI uses it
                                    too; one module per resource (``service/orgs.py``...)
* :mod:`~facegate.admin.endpoint`   what an endpoint is: the table row the router serves and the
                                    OpenAPI document describes, a handler's call and reply
* :mod:`~facegate.admin.handlers`   one function per endpoint, and the table of them
                                    (``ENDPOINTS``)
* :mod:`~facegate.admin.inputs`     the JSON bodies the API reads, as types
* :mod:`~facegate.admin.fields`     reading JSON bodies and query strings with errors naming
                                    fields
* :mod:`~facegate.admin.explain`    the body of ``POST /admin/policies/explain`` as a policy
                                    request
* :mod:`~facegate.admin.views`      records -> JSON documents (never a secret, hash or vector)
* :mod:`~facegate.admin.routes`     the Starlette routes (JSON in and out, bounded bodies)
* :mod:`~facegate.admin.typeschema` JSON Schemas derived from Python types, for the views
* :mod:`~facegate.admin.openapi`    the OpenAPI 3.1 document of those routes
* :mod:`~facegate.admin.sweeper`    the background task that enforces retention and expires
                                    reviews
"""
