"""Load test of `shadematch kiosk` on loopback: N requests at C concurrent with the demo photos, the
server's memory (RSS from /proc) before, during and after, p50/p95 latency, errors; then every kind of
malformed request, each of which must get its 4xx while the server keeps serving; then a second round to
show that memory does not grow. Writes benchmarks/kiosk/report.json (README.md holds the reading).

    shadematch demo --out /tmp/kiosk-demo
    python benchmarks/kiosk/loadtest.py --bundle /tmp/kiosk-demo [--executable dist/shadematch/shadematch]

Exits non-zero when a request errs, a malformed request is not answered with its 4xx, or RSS grows by
more than --rss-bound-mb between the warmed-up server and the end.
"""
from __future__ import annotations

import argparse
import http.client
import io
import itertools
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from machine import describe_machine  # noqa: E402

from runtime.kiosk.client import KioskClient, Reply  # noqa: E402

PHOTOS = sorted((ROOT / "export" / "demo" / "images").glob("*_query.jpg"))
HERE = Path(__file__).resolve().parent


def rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status", encoding="utf-8"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


class RssSampler:
    """Peak RSS of a process, sampled every 50 ms on a thread."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._stop = pid, 0.0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_mb(self.pid))
            self._stop.wait(0.05)

    def __enter__(self) -> "RssSampler":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def start_server(args: argparse.Namespace) -> tuple[subprocess.Popen, str]:
    command = [str(args.executable)] if args.executable else [sys.executable, "-m", "runtime.cli"]
    command += ["kiosk", "--bundle", str(args.bundle), "--port", "0", "--workers", str(args.workers),
                "--threads", str(args.threads), "--request-deadline", str(args.request_deadline)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = process.stdout.readline()
    if not line.startswith("shadematch kiosk: serving"):
        process.kill()
        raise SystemExit(f"the server did not start: {line!r}")
    return process, line.split(" on ")[-1].strip()


def load_round(client: KioskClient, requests: int, concurrency: int) -> dict:
    photos = [photo.read_bytes() for photo in PHOTOS]

    def one(i: int) -> tuple[int, float]:
        started = time.perf_counter()
        reply = client.query(photos[i % len(photos)], filename=PHOTOS[i % len(PHOTOS)].name)
        ok = reply.status == 200 and len(reply.json()["matches"]) == 7
        return (0 if ok else reply.status), 1000 * (time.perf_counter() - started)

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        results = list(pool.map(one, range(requests)))
    wall = time.perf_counter() - started
    latencies = np.array([ms for _, ms in results])
    errors = [status for status, _ in results if status]
    return {
        "requests": requests, "concurrency": concurrency, "errors": len(errors), "error_statuses": sorted(set(errors)),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1), "p95_ms": round(float(np.percentile(latencies, 95)), 1),
        "max_ms": round(float(latencies.max()), 1), "throughput_rps": round(requests / wall, 2),
    }


def announce_only(client: KioskClient, length: int) -> Reply:
    """Headers announcing ``length`` bytes and a few of them: the server must answer without reading the rest."""
    connection = http.client.HTTPConnection(client.host, client.port, timeout=30)
    try:
        connection.putrequest("POST", "/api/query")
        connection.putheader("Content-Type", "multipart/form-data; boundary=x")
        connection.putheader("Content-Length", str(length))
        connection.endheaders(b"--x\r\n")
        response = connection.getresponse()
        return Reply(response.status, response.read())
    finally:
        connection.close()


def malformed_requests(client: KioskClient) -> list[tuple[str, int, object]]:
    """(name, expected status, the call) for each kind of bad request."""
    photo = PHOTOS[0].read_bytes()
    big = io.BytesIO()
    Image.new("RGB", (8700, 5760), (180, 40, 40)).save(big, "JPEG", quality=30)
    return [
        ("empty body", 400, lambda: client.request("POST", "/api/query", b"", {"Content-Type": "multipart/form-data; boundary=x"})),
        ("wrong content type (raw JPEG)", 415, lambda: client.request("POST", "/api/query", photo, {"Content-Type": "image/jpeg"})),
        ("wrong field name", 400, lambda: client.query(photo, field_name="photo")),
        ("empty file", 400, lambda: client.query(b"")),
        ("text file as photo", 415, lambda: client.query(b"not a photo\n" * 50, filename="a.txt", content_type="text/plain")),
        ("truncated JPEG", 422, lambda: client.query(photo[: len(photo) // 3])),
        ("50-megapixel JPEG", 413, lambda: client.query(big.getvalue(), filename="50mp.jpg")),
        ("upload just over the 15 MB limit", 413, lambda: client.query(b"\xff" * (15 * 1024 * 1024 + 16 * 1024))),
        ("40 MB announced (cut off from the headers)", 413, lambda: announce_only(client, 40 * 1024 * 1024)),
        ("path traversal on the image route", 404, lambda: client.request("GET", "/api/catalog/..%2F..%2Fetc%2Fpasswd/image")),
    ]


def drip(client: KioskClient, stop: threading.Event, every_s: float = 1.0) -> float | None:
    """A slow client: request headers one byte a second. Returns after how many seconds the server closed the
    connection (None: still open when the round ended)."""
    started = time.perf_counter()
    connection = socket.create_connection((client.host, client.port), timeout=10)
    try:
        for byte in itertools.cycle(b"POST /api/query HTTP/1.1\r\nX-Slow: "):
            if stop.wait(every_s):
                return None
            try:
                connection.sendall(bytes([byte]))
                connection.settimeout(0.01)
                if connection.recv(1) == b"":
                    return time.perf_counter() - started
            except socket.timeout:
                continue
            except OSError:
                return time.perf_counter() - started
    finally:
        connection.close()
    return None


def mixed_round(client: KioskClient, requests: int, concurrency: int, malformed_clients: int, drippers: int,
                deadline_s: float) -> dict:
    """Well-formed queries at ``concurrency`` while ``malformed_clients`` send bad requests in a loop and
    ``drippers`` trickle their requests in: the well-formed ones must all be answered, and the drippers must be
    cut off once the server's request deadline has passed (they are given it plus 5 s)."""
    stop = threading.Event()
    cut_after: list[float | None] = []
    bad_answers: list[dict] = []
    malformed = [m for m in malformed_requests(client) if "megapixel" not in m[0]]  # the 50 MP one is tried once above

    def bad_client(offset: int) -> None:
        for name, expected, call in itertools.islice(itertools.cycle(malformed), offset, None):
            if stop.is_set():
                return
            status = call().status
            bad_answers.append({"request": name, "expected": expected, "status": status})

    with ThreadPoolExecutor(malformed_clients + drippers) as noise:
        drips = [noise.submit(drip, client, stop) for _ in range(drippers)]
        bad = [noise.submit(bad_client, i) for i in range(malformed_clients)]
        good = load_round(client, requests, concurrency)
        waited = time.perf_counter()
        while not all(d.done() for d in drips) and time.perf_counter() - waited < deadline_s + 5:
            time.sleep(0.2)
        stop.set()
        cut_after = [d.result() for d in drips]
        for future in bad:
            future.result()
    wrong = [a for a in bad_answers if a["status"] != a["expected"]]
    return {**good, "malformed_clients": malformed_clients, "malformed_requests": len(bad_answers),
            "malformed_wrong_status": wrong[:10], "drippers": drippers,
            "drippers_cut_after_s": [None if c is None else round(c, 1) for c in cut_after]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", type=Path, required=True)
    parser.add_argument("--executable", type=Path, default=None, help="test the standalone executable instead of this Python")
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="ONNX Runtime threads per query")
    parser.add_argument("--rss-bound-mb", type=float, default=64.0)
    parser.add_argument("--malformed-clients", type=int, default=2, help="clients sending bad requests during round 3")
    parser.add_argument("--drippers", type=int, default=8, help="clients trickling a request in during round 3")
    parser.add_argument("--request-deadline", type=float, default=5.0, help="the server's --request-deadline (s)")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()

    process, url = start_server(args)
    client = KioskClient(url, timeout=60)
    try:
        load_round(client, 2 * args.concurrency, args.concurrency)  # warm-up: first allocations, kernel choice
        rss_warm = rss_mb(process.pid)
        with RssSampler(process.pid) as sampler:
            first = load_round(client, args.requests, args.concurrency)
            rss_after_first = rss_mb(process.pid)
            malformed = []
            for name, expected, call in malformed_requests(client):
                reply = call()
                try:
                    message = reply.json()["error"]["message"]
                except (ValueError, KeyError):
                    message = reply.body.decode("utf-8", "replace").strip().replace("\n", " ")
                healthy = client.health().status == 200
                malformed.append({"request": name, "expected": expected, "status": reply.status,
                                  "message": message[:160], "still_serving": healthy})
            second = load_round(client, args.requests, args.concurrency)
            third = mixed_round(client, args.requests, args.concurrency, args.malformed_clients, args.drippers,
                                args.request_deadline)
            rss_end = rss_mb(process.pid)
        peak = sampler.peak
    finally:
        process.terminate()
        process.wait(timeout=10)

    growth = rss_end - rss_warm
    report = {
        "server": "executable " + str(args.executable) if args.executable else f"python -m runtime.cli ({sys.version.split()[0]})",
        "bundle": args.bundle.name, "workers": args.workers, "onnx_threads": args.threads,
        "round_1": first, "round_2": second, "round_3_mixed": third, "malformed": malformed,
        "rss_mb": {"warm": round(rss_warm, 1), "after_round_1": round(rss_after_first, 1), "end": round(rss_end, 1),
                   "peak": round(peak, 1), "growth_warm_to_end": round(growth, 1), "bound": args.rss_bound_mb},
        "machine": describe_machine(),
    }
    failures = [f"round {i}: {r['errors']} errors" for i, r in ((1, first), (2, second), (3, third)) if r["errors"]]
    failures += [f"round 3: {len(third['malformed_wrong_status'])} bad requests with the wrong status"] if third["malformed_wrong_status"] else []
    failures += ["round 3: a dripping client was never cut off"] if None in third["drippers_cut_after_s"] else []
    failures += [f"{m['request']}: {m['status']} (expected {m['expected']})" for m in malformed
                 if m["status"] != m["expected"] or not m["still_serving"]]
    if growth > args.rss_bound_mb:
        failures.append(f"RSS grew {growth:.1f} MB > {args.rss_bound_mb} MB")
    report["failures"] = failures
    name = "report-executable" if args.executable else "report"
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{name}.json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: report[k] for k in ("round_1", "round_2", "round_3_mixed", "rss_mb", "failures")}, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
