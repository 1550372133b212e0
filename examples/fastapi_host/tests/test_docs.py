"""The interactive docs work offline: /docs and everything it loads come from the host."""

from __future__ import annotations

import re


def test_docs_reference_only_local_urls_and_those_are_served(api):
    page = api.get("/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "http://" not in html and "https://" not in html and "//cdn" not in html
    urls = re.findall(r'(?:src|href)="([^"]+)"', html) + re.findall(r"url: '([^']+)'", html)
    assert urls, html
    assert all(url.startswith("/") and not url.startswith("//") for url in urls), urls
    assert {"/docs-assets/swagger-ui-bundle.js", "/docs-assets/swagger-ui.css", "/openapi.json"} <= set(urls)
    for url in urls:
        asset = api.get(url)
        assert asset.status_code == 200, url
    bundle = api.get("/docs-assets/swagger-ui-bundle.js")
    assert "javascript" in bundle.headers["content-type"] and len(bundle.content) > 500_000
    assert b"SwaggerUIBundle" in bundle.content
    assert "text/css" in api.get("/docs-assets/swagger-ui.css").headers["content-type"]
    # no call to the online spec validator either
    assert '"validatorUrl": null' in html


def test_docs_assets_are_public_and_unknown_ones_are_404_envelopes(api):
    from conftest import assert_envelope

    assert api.head("/docs-assets/swagger-ui.css").status_code == 200
    assert_envelope(api.get("/docs-assets/nothing.js"), 404, "NOT_FOUND")
    r = api.post("/docs-assets/swagger-ui.css")
    assert_envelope(r, 405, "METHOD_NOT_ALLOWED")
    assert r.headers["allow"] == "GET, HEAD"
