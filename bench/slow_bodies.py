"""Unauthenticated slow bodies against a live server (issue 18, item 8), one run.

The attack: ``--connections`` connections (60) each declare an 8 MiB body on ``POST /``, send
``--fraction`` of it (0.94) at once and then nothing more, from one client address or spread
over ``--addresses`` loopback addresses (127.0.0.x). Reported per row: how many bodies the
server took (its answer not yet come), refused at once (an answer within a second: 503
ThrottlingException from the body budget), the growth of the server process's resident memory
(VmRSS, main process; engine workers excluded) once every body was sent, how many connections
were still open after 10 s and after ``--observe`` seconds (45), and what the held ones were
finally answered. Run it against the code before the fix too (``PYTHONPATH=<old
checkout>/src``, ``--tag before``): there nothing is refused and nothing is closed. Writes
bench/results/slow_bodies.json.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import select
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchlib import ROOT, machine_info, machine_line, write_results

sys.path.insert(0, str(ROOT))
from tests.e2e.server import LiveServer

MIB = 1024 * 1024


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def attack(
    server: LiveServer, connections: int, addresses: int, fraction: float, observe_s: float
) -> dict[str, Any]:
    assert server.process is not None
    pid = server.process.pid
    before = rss_mib(pid)
    declared = 8 * MIB
    head = (
        f"POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: RekognitionService.DetectFaces\r\n"
        f"Content-Type: application/x-amz-json-1.1\r\nContent-Length: {declared}\r\n\r\n"
    ).encode()
    body = b'{"Image": {"Bytes": "' + b"A" * int(declared * fraction)
    socks: list[socket.socket] = []
    started = time.monotonic()
    for i in range(connections):
        sock = socket.socket()
        sock.bind((f"127.0.0.{1 + i % addresses}", 0))
        sock.connect(("127.0.0.1", server.port))
        sock.setblocking(False)
        sent = 0
        data = head + body
        deadline = time.monotonic() + 5
        while sent < len(data) and time.monotonic() < deadline:
            try:
                sent += sock.send(data[sent : sent + (1 << 20)])
            except BlockingIOError:
                select.select([], [sock], [], 0.05)
            except OSError:
                break  # refused and closed by the server
        socks.append(sock)
    time.sleep(1.0)
    grown = rss_mib(pid) - before
    answers: dict[int, str] = {}
    closed_at: dict[int, float] = {}
    buffers: dict[int, bytes] = collections.defaultdict(bytes)
    open_at_10 = None
    while time.monotonic() - started < observe_s and len(closed_at) < connections:
        live = [s for i, s in enumerate(socks) if i not in closed_at]
        ready, _, _ = select.select(live, [], [], 0.2)
        for sock in ready:
            i = socks.index(sock)
            try:
                chunk = sock.recv(65536)
            except OSError:
                chunk = b""
            if chunk:
                buffers[i] += chunk
                continue
            closed_at[i] = time.monotonic() - started
            status = buffers[i].split(b" ", 2)[1].decode() if buffers[i] else "closed"
            answers[i] = status
        if open_at_10 is None and time.monotonic() - started >= 10:
            open_at_10 = connections - len(closed_at)
    for i, buf in buffers.items():  # answered but not (yet) closed
        if i not in answers and buf:
            answers[i] = buf.split(b" ", 2)[1].decode()
    for sock in socks:
        with contextlib.suppress(OSError):
            sock.close()
    refused_at_once = sum(1 for i, t in closed_at.items() if t < 2.0 and answers[i] != "408")
    codes = collections.Counter(answers.values())
    return {
        "addresses": addresses,
        "connections": connections,
        "refused_at_once": refused_at_once,
        "taken": connections - refused_at_once,
        "rss_growth_mib": grown,
        "open_after_10_s": open_at_10 if open_at_10 is not None else connections - len(closed_at),
        "open_after_observe": connections - len(closed_at),
        "last_close_s": max(closed_at.values(), default=float("nan")),
        "answers": dict(codes),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--connections", type=int, default=60)
    parser.add_argument("--addresses", default="1,8")
    parser.add_argument("--fraction", type=float, default=0.94)
    parser.add_argument("--observe", type=float, default=45.0)
    parser.add_argument("--tag", default="")
    args = parser.parse_args()
    rows = []
    for addresses in (int(a) for a in args.addresses.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            server = LiveServer(Path(tmp) / "data", workers=1)
            server.start()
            try:
                rows.append(
                    attack(server, args.connections, addresses, args.fraction, args.observe)
                )
            finally:
                server.stop()
    print(
        f"{'addresses':>9} {'conns':>5} {'taken':>5} {'refused':>7} {'RSS +MiB':>8} "
        f"{'open 10s':>8} {'open end':>8} {'last close s':>12}  answers"
    )
    for r in rows:
        print(
            f"{r['addresses']:>9} {r['connections']:>5} {r['taken']:>5} {r['refused_at_once']:>7} "
            f"{r['rss_growth_mib']:>8.0f} {r['open_after_10_s']:>8} {r['open_after_observe']:>8} "
            f"{r['last_close_s']:>12.1f}  {r['answers']}"
        )
    info = machine_info()
    print(f"observed for {args.observe:g} s; " + machine_line(info))
    name = "slow_bodies" + (f"_{args.tag}" if args.tag else "")
    print(f"wrote {write_results(name, {'machine': info, 'rows': rows})}")


if __name__ == "__main__":
    main()
