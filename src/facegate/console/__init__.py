"""The operator console: server-rendered pages under ``/console`` (:mod:`facegate.console.routes`).

Sign-in with an operator account's console password (:mod:`facegate.console.sessions`), pages
for the overview, organisations and keys, policies and the decision simulator, the review queue,
the audit trail, bias audits and collections. Pages call :class:`facegate.admin.service.
AdminService` (no business logic here), work with plain HTML forms and need no JavaScript.
"""
