"""Verifications per second, side by side in one run: internflow's verifier (Python,
badges/verify.py) and Digital Bazaar's (Node.js, @digitalbazaar/vc with the eddsa-rdfc-2022
cryptosuite, tests/interop/verify.mjs), on the same badge.

The badge is the demo's (examples/plan.json, every optional part), signed as the badge activity
signs it. Both verifiers do the same work per verification: the credential's proof (RDFC-1.0
canonicalization, Ed25519), the issuer's key and controller document, and the revocation status
list credential (its own proof checked too). The documents they need are produced by the code
the API serves them with (KeyRing.key_document, controller_document, the signed status list) and
served over HTTP on loopback; each verifier fetches them once and keeps them, so the figures are
verification, not HTTP. Needs `npm ci --prefix tests/interop`.

    .venv/bin/python -m bench.interop_verify [--iterations 200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from badges.keyring import KeyRing
from badges.proof import sign
from badges.status import StatusList, build_status_list_credential, credential_status
from badges.verify import verify_badge
from issuance.award import build_credential
from models.plan import InternshipPlan

ROOT = Path(__file__).resolve().parent.parent
PLAN = ROOT / "examples" / "plan.json"
SCRIPT = ROOT / "tests" / "interop" / "verify.mjs"
ACHIEVED = {"lo-web": "good", "lo-team": "excellent"}


def documents(base: str, key_dir: Path) -> tuple[str, dict[str, Any]]:
    """(the signed badge as JSON, every document a verifier fetches, by path)."""
    plan = InternshipPlan.model_validate_json(PLAN.read_text(encoding="utf-8"))
    ring = KeyRing.load_or_create(key_dir, rsa=False)
    key = ring.signing_key
    issuer = f"{base}/issuers/{plan.institution.id}"
    list_url = f"{issuer}/status/revocation"
    issued_at = datetime.now(UTC) - timedelta(hours=1)
    credential = build_credential(
        plan,
        ACHIEVED,
        issuer_id=issuer,
        image_url=f"{base}/images/badge.png",
        issued_at=issued_at,
        evidence=[("Final report", "Built and tested the booking pages with the team.")],
        credential_status=credential_status((list_url, 94567)),
    )
    method = KeyRing.verification_method(issuer, key)
    badge = sign(credential, key, method, issued_at)
    status_list = sign(
        build_status_list_credential(
            list_url, issuer, "revocation", StatusList(), valid_from=issued_at
        ),
        key,
        method,
        issued_at,
    )
    profile = ring.controller_document(issuer, name=plan.institution.name, url=plan.institution.url)
    served = {
        method: ring.key_document(issuer, key.key_id),
        issuer: profile,
        list_url: status_list,
    }
    return json.dumps(badge), {url.removeprefix(base): doc for url, doc in served.items()}


def serve(served: dict[str, Any]) -> tuple[ThreadingHTTPServer, str]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            document = served.get(self.path)
            body = json.dumps(document).encode() if document is not None else b"{}"
            self.send_response(200 if document is not None else 404)
            self.send_header("Content-Type", "application/ld+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def python_rate(badge: str, key_dir: Path, lists: dict[str, Any], iterations: int) -> float:
    keys = KeyRing.load(key_dir).public_keys()
    for _ in range(3):  # warm up (contexts parsed, caches filled)
        report = verify_badge(badge, issuer_keys=keys, status_lists=lists.__getitem__)
        assert report.verified and report.revoked is False, report.errors
    started = time.perf_counter()
    for _ in range(iterations):
        report = verify_badge(badge, issuer_keys=keys, status_lists=lists.__getitem__)
    elapsed = time.perf_counter() - started
    assert report.verified
    return iterations / elapsed


def node_rate(badge_file: Path, base: str, iterations: int) -> float:
    node = shutil.which("node")
    if node is None or not (SCRIPT.parent / "node_modules").is_dir():
        sys.exit("needs Node.js and `npm ci --prefix tests/interop`")
    done = subprocess.run(
        [node, str(SCRIPT), "bench", str(badge_file), "--api", base,
         "--iterations", str(iterations)],
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result.get("verified"):
        sys.exit(f"Digital Bazaar's verifier did not verify the badge: {result}")
    return float(result["perSecond"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="interop-bench-") as folder:
        served: dict[str, Any] = {}
        server, base = serve(served)  # the address first: the badge names it
        try:
            badge, documents_by_path = documents(base, Path(folder) / "keys")
            served.update(documents_by_path)
            badge_file = Path(folder) / "badge.json"
            badge_file.write_text(badge, encoding="utf-8")
            lists = {f"{base}{path}": doc for path, doc in served.items() if "/status/" in path}
            py = python_rate(badge, Path(folder) / "keys", lists, args.iterations)
            js = node_rate(badge_file, base, args.iterations)
        finally:
            server.shutdown()
            server.server_close()
    print(f"Verifications per second on one badge ({args.iterations} each, proof + status list):")
    print(f"  internflow (Python, badges/verify.py)            {py:8.1f}/s")
    print(f"  Digital Bazaar (Node.js, @digitalbazaar/vc 7.3)  {js:8.1f}/s")
    print(json.dumps({"python_per_second": round(py, 1), "node_per_second": round(js, 1),
                      "iterations": args.iterations}))  # fmt: skip


if __name__ == "__main__":
    from bench.part import console_logging

    console_logging()
    main()
