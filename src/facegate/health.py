"""``GET /healthz``: whether this server can serve requests as it promises to.

503 (with ``status: "unavailable"`` and the reasons) when

* the audit log refuses appends (a write failed, e.g. the disk is full; it repairs itself as
  soon as it can, see :mod:`facegate.audit.log`): every request would fail closed, so a load
  balancer should send them elsewhere;
* the store does not answer a trivial read within ``store_timeout_s`` (down, or stuck behind a
  lock). One probe at a time: while a probe hangs, later checks report it without starting
  another thread;
* the data directory's file system has less than ``min_free_bytes`` free (1 MiB): the
  SQLite store and the audit log are about to fail writes (the log keeps a reserve for the
  outcomes of writes in progress, and then refuses new writes).

200 otherwise; ``status: "degraded"`` with ``warnings`` when the server continues an audit log
whose tail failed verification at start because the operator said so
(``FACEGATE_AUDIT_ACCEPT_DAMAGE``): it serves, but the damage is on record
(``audit.tamper_suspected``) and stays visible here until the next start.
"""

from __future__ import annotations

import asyncio
import shutil
import threading
from typing import Any

from facegate import __version__
from facegate.services import Services


class HealthCheck:
    """The health document of one service graph (one per app)."""

    def __init__(
        self,
        services: Services,
        *,
        store_timeout_s: float = 2.0,
        min_free_bytes: int = 1024 * 1024,
    ) -> None:
        self._services = services
        self._timeout_s = store_timeout_s
        self._min_free = min_free_bytes
        self._probing = threading.Lock()

    def _disk(self) -> dict[str, Any]:
        try:
            free = shutil.disk_usage(self._services.settings.data_dir).free
        except OSError as exc:
            return {"ok": False, "reason": f"cannot read: {exc.strerror or exc}"}
        doc: dict[str, Any] = {"ok": free >= self._min_free, "free_bytes": free}
        if free < self._min_free:
            doc["reason"] = f"{free} bytes free (less than {self._min_free})"
        return doc

    def _ping(self) -> None:
        try:
            with self._services.db.read() as conn:
                conn.execute("SELECT 1").fetchone()
        finally:
            self._probing.release()

    async def _store(self) -> dict[str, Any]:
        if not self._probing.acquire(blocking=False):
            return {"ok": False, "reason": "the previous store probe has not returned"}
        try:
            await asyncio.wait_for(asyncio.to_thread(self._ping), self._timeout_s)
        except TimeoutError:
            return {"ok": False, "reason": f"no answer within {self._timeout_s:g} s"}
        except Exception as exc:  # the class only: a driver's message may name hosts or users
            return {"ok": False, "reason": f"the store failed a read ({type(exc).__name__})"}
        return {"ok": True}

    async def check(self) -> tuple[int, dict[str, Any]]:
        """(HTTP status, JSON document)."""
        services = self._services
        audit = services.audit.health()
        store = await self._store()
        disk = self._disk()
        reasons = []
        if not audit["ok"]:
            reasons.append(f"the audit log refuses appends: {audit.get('reason')}")
        if not store["ok"]:
            reasons.append(f"the store does not answer: {store['reason']}")
        if not disk["ok"]:
            reasons.append(f"the data directory's file system is full: {disk['reason']}")
        warnings = []
        if audit.get("tamper_suspected"):
            problem = audit["tamper_suspected"]
            warnings.append(
                "the audit log's tail failed verification at start and was continued "
                f"(audit.tamper_suspected): {problem.get('kind')}: {problem.get('detail')}"
            )
        status = "unavailable" if reasons else "degraded" if warnings else "ok"
        doc: dict[str, Any] = {
            "status": status,
            "version": __version__,
            "face_model_version": services.engine.model_version,
            "similarity_model": services.deps.matcher.version,
            "engine_workers": services.engine.workers,
            "audit": audit,
            "store": store,
            "disk": disk,
        }
        if reasons:
            doc["reasons"] = reasons
        if warnings:
            doc["warnings"] = warnings
        return (503 if reasons else 200), doc
