"""A verifier's web page on another origin reads every public verification document, in a real
browser (headless Chromium): a second little HTTP server on another port serves the page, whose
script fetches each document from the API (plainly, with the headers DCC's document loader
sends, which need a preflight, conditionally, and with HEAD) and reports what it got. The
pages, the operators' API and the wallet's token endpoint stay closed to other origins."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from playwright.async_api import Browser

from api.app import create_app
from embedded.ports import free_port
from runtime.settings import Settings
from tests.test_api_harness import Api
from tests.test_api_schema import served
from tests.test_browser import browser, site
from tests.test_verification_documents import _issue

__all__ = ["browser", "site"]

VERIFIER_PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>A verifier elsewhere</title></head>
<body><h1>A verifier on another origin</h1>
<script>
async function fetchEach(urls, options) {
  const report = [];
  for (const url of urls) {
    try {
      const answer = await fetch(url, {mode: 'cors', credentials: 'omit', ...options});
      const text = options.method === 'HEAD' ? '' : await answer.text();
      let id = null;
      try { id = JSON.parse(text).id || null; } catch (error) { id = null; }
      report.push({url, status: answer.status, type: answer.type, bytes: text.length, id,
                   etag: answer.headers.get('ETag'),
                   cacheControl: answer.headers.get('Cache-Control'),
                   length: answer.headers.get('Content-Length')});
    } catch (error) {
      report.push({url, error: String(error)});
    }
  }
  return report;
}
</script></body></html>
"""


@contextmanager
def verifier_origin() -> Iterator[str]:
    """A second, unrelated HTTP server on another port: it serves the verifier's page only."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(VERIFIER_PAGE)))
            self.end_headers()
            self.wfile.write(VERIFIER_PAGE)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


@asynccontextmanager
async def did_web_deployment(site: Api) -> AsyncIterator[tuple[str, Settings]]:
    """The same records served as a did:web deployment (an https public base URL, as did:web
    needs; served here over plain HTTP on loopback, as behind a TLS proxy)."""
    port = free_port()
    settings = site.settings.model_copy(
        update={
            "api_port": port,
            "public_base_url": f"https://localhost:{port}",
            "did_web_institutions": "*",
        }
    )
    async with served(create_app(settings, pool=site.pool), port) as base:
        yield base, settings


@pytest.mark.timeout(180)
async def test_a_page_on_another_origin_reads_every_verification_document(
    site: Api, browser: Browser
) -> None:
    [credential_id] = await _issue(site, 1)
    uuid = credential_id.removeprefix("urn:uuid:")
    api = site.settings.public_base_url
    credential = (await site.http.get(f"/credentials/{uuid}.json")).json()
    issuer = credential["issuer"]["id"]
    status_list = credential["credentialStatus"]["statusListCredential"]
    documents = {
        "credential JSON": f"{api}/credentials/{uuid}.json",
        "issuer-kept status": f"{api}/credentials/{uuid}/status",
        "issuer profile": issuer,
        "public key": credential["proof"][0]["verificationMethod"],
        "RSA key": f"{issuer}/keys/rsa-1",
        "status list": status_list,
        "JWKS": f"{api}/.well-known/jwks.json",
        "credential issuer metadata": f"{api}/.well-known/openid-credential-issuer",
        "OAuth server metadata": f"{api}/.well-known/oauth-authorization-server",
        "badge page's JSON": f"{api}/badges/{uuid}/credential",
        "badge image": credential["credentialSubject"]["achievement"]["image"]["id"],
    }
    closed = {
        "verification page": f"{api}/verify/{uuid}",
        "operators' API": f"{api}/api/internships",
        "admin dashboard": f"{api}/admin/",
    }
    async with did_web_deployment(site) as (did_base, did_settings):
        [did_id] = await _issue(_with(site, did_settings), 1)
        did_uuid = did_id.removeprefix("urn:uuid:")
        did_badge = (await site.http.get(f"/credentials/{did_uuid}.json")).json()
        # did:web:<host>:issuers:<id>, its document and list on the did:web deployment.
        institution = did_badge["issuer"]["id"].rsplit(":", 1)[-1]
        did_list = did_badge["credentialStatus"]["statusListCredential"]
        documents["deployment's DID document"] = f"{did_base}/.well-known/did.json"
        documents["institution's DID document"] = f"{did_base}/issuers/{institution}/did.json"
        documents["did:web status list"] = did_list.replace(did_settings.public_base_url, did_base)
        assert documents["did:web status list"].endswith(
            f"/issuers/{institution}/did/status/revocation"
        )

        with verifier_origin() as origin:
            assert origin.split(":")[-1] != api.split(":")[-1]
            context = await browser.new_context()
            page = await context.new_page()
            opened = await page.goto(origin + "/")
            assert opened is not None and opened.status == 200
            urls = list(documents.values())
            plain = await page.evaluate("urls => fetchEach(urls, {})", urls)
            # What DCC's document loader sends: not safelisted, so the browser asks first.
            loader = await page.evaluate(
                "urls => fetchEach(urls, {headers: {'Accept': 'application/ld+json, "
                "application/json', 'Cache-Control': 'no-cache', 'Pragma': 'no-cache'}})",
                urls,
            )
            head = await page.evaluate("urls => fetchEach(urls, {method: 'HEAD'})", urls)
            tags = {item["url"]: item["etag"] for item in plain}
            conditional = await page.evaluate(
                "tags => Promise.all(Object.entries(tags).map(([url, tag]) => "
                "fetchEach([url], {cache: 'no-store', headers: {'If-None-Match': tag}})))",
                tags,
            )
            refused = await page.evaluate("urls => fetchEach(urls, {})", list(closed.values()))
            await context.close()

    for name, url in documents.items():
        for kind, report in (("plain", plain), ("loader headers", loader), ("HEAD", head)):
            got = next(item for item in report if item["url"] == url)
            assert "error" not in got, (name, kind, got)
            assert got["status"] == 200 and got["type"] == "cors", (name, kind, got)
            assert got["etag"] and got["cacheControl"], (name, kind, got)
        got = next(item for item in plain if item["url"] == url)
        assert got["bytes"] > 0, (name, got)
        assert next(item for item in head if item["url"] == url)["bytes"] == 0
    by_url = {item["url"]: item for item in plain}
    assert by_url[documents["credential JSON"]]["id"] == credential_id
    assert by_url[documents["issuer profile"]]["id"] == issuer
    assert by_url[documents["status list"]]["id"] == status_list
    assert by_url[documents["deployment's DID document"]]["id"].startswith("did:web:localhost%3A")
    institution_did = by_url[documents["institution's DID document"]]["id"]
    assert institution_did == did_badge["issuer"]["id"], institution_did
    assert by_url[documents["did:web status list"]]["id"] == did_list
    # A conditional request (its If-None-Match needs a preflight too) gets 304.
    for [got] in conditional:
        assert got.get("status") == 304, got
    for name, url in closed.items():
        got = next(item for item in refused if item["url"] == url)
        assert "error" in got and "Failed to fetch" in got["error"], (name, got)


def _with(site: Api, settings: Settings) -> Api:
    """The harness's parts, issuing under other settings."""
    return Api(
        http=site.http,
        env=site.env,
        client=site.client,
        settings=settings,
        pool=site.pool,
        operator=site.operator,
        admin=site.admin,
        secret=site.secret,
    )


async def test_preflights_are_answered_for_the_documents_only(site: Api) -> None:
    """The preflight a browser sends before a request with headers of its own: 204 with the
    methods and headers asked for on a document, nothing on a page or the wallet's endpoints
    (no CORS there: the browser refuses the request)."""
    asked = {
        "Origin": "http://127.0.0.1:1",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "cache-control, pragma, if-none-match",
    }
    answer = await site.http.options("/.well-known/jwks.json", headers=asked)
    assert answer.status_code == 204
    assert answer.headers["access-control-allow-origin"] == "*"
    assert answer.headers["access-control-allow-methods"] == "GET, HEAD, OPTIONS"
    assert answer.headers["access-control-allow-headers"] == asked["Access-Control-Request-Headers"]
    assert "access-control-allow-credentials" not in answer.headers
    posting = await site.http.options(
        "/.well-known/jwks.json", headers={**asked, "Access-Control-Request-Method": "POST"}
    )
    assert posting.status_code == 405 and "access-control-allow-methods" in posting.headers
    for path in ("/oid4vci/token", "/verify/00000000-0000-0000-0000-000000000000", "/admin/"):
        other = await site.http.options(path, headers=asked)
        assert "access-control-allow-origin" not in other.headers, path
