"""The built documentation site, looked at in a real browser (headless Chromium driven by Playwright).

- search finds a message: typing ``SpotEvent`` in the search box lists its reference entry, and
  following the result lands on it;
- the trading guide is reachable from the home page in at most two clicks on visible links, at
  desktop width and at 400 px;
- no broken internal link: every page is loaded, and every same-site ``href`` on it resolves to a
  page of the site and, when it has a ``#fragment``, to an element of that page; nothing the pages
  load from the site fails.

``nox -s docs_browser`` builds the site, installs Playwright and runs this file. The browser is the
system's Chromium (``apt-get install chromium``; Playwright's own browser downloads are never used):
``CHROMIUM`` names another executable. ``CTRADER_DOCS_SITE`` names an already built site; without it
the site is built here with ``mkdocs build --strict``. Skipped, with the reason, when Playwright,
Chromium or mkdocs is missing.
"""

from __future__ import annotations

import functools
import http.server
import importlib.util
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

import pytest

if TYPE_CHECKING:  # Playwright is not among the dev extras that mypy runs with
    from playwright.sync_api import Browser, Page  # type: ignore[import-not-found,unused-ignore]

ROOT = Path(__file__).resolve().parents[2]

sync_api = pytest.importorskip(
    "playwright.sync_api",
    reason="Playwright is not installed (nox -s docs_browser installs it: pip install playwright)",
)


def _chromium() -> str:
    named = os.environ.get("CHROMIUM")
    if named:
        return named
    for candidate in ("chromium", "chromium-browser"):
        found = shutil.which(candidate)
        if found is not None:
            return found
    pytest.skip("no Chromium on this machine (apt-get install chromium, or set CHROMIUM to an executable)")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    built = os.environ.get("CTRADER_DOCS_SITE")
    if built:
        path = Path(built)
        assert (path / "index.html").is_file(), f"CTRADER_DOCS_SITE={built} holds no built site"
        return path
    if importlib.util.find_spec("mkdocs") is None:  # not among the dev extras mypy runs with
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]'), and CTRADER_DOCS_SITE is not set")
    path = tmp_path_factory.mktemp("site")
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "--site-dir", str(path)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return path


@pytest.fixture(scope="module")
def base_url(site: Path) -> Iterator[str]:
    handler = functools.partial(_QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, headless=True)
        try:
            yield browser
        finally:
            browser.close()


def _page(browser: Browser, width: int = 1280) -> Page:
    """A page that reaches only 127.0.0.1: anything else (the theme asks a code host for the
    repository's star count) is refused before it leaves the machine."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    # Hang guards only, generous for a loaded machine: the search index is built in a web worker.
    page.set_default_timeout(60_000)
    page.set_default_navigation_timeout(60_000)
    page.route(
        "**/*",
        lambda route: (
            route.continue_() if urlsplit(route.request.url).hostname == "127.0.0.1" else route.abort()
        ),
    )
    return page


def _internal(url: str, base_url: str) -> bool:
    return url.startswith(base_url)


# Links a person can see and click: rendered, not hidden by CSS, and not outside the viewport
# sideways (Material keeps its navigation drawer off-screen on narrow viewports).
_VISIBLE_HREFS = """els => els.map((a, index) => {
    const r = a.getBoundingClientRect();
    const shown = a.checkVisibility({opacityProperty: true, visibilityProperty: true})
        && r.width > 0 && r.height > 0 && r.right > 0 && r.left < window.innerWidth;
    return shown ? [a.href, index] : null;
}).filter(x => x !== null)"""


def _visible_links(page: Page, base_url: str) -> dict[str, int]:
    """The page's visible links to other pages of the site: target page URL -> index among a[href]."""
    links: dict[str, int] = {}
    for href, index in page.eval_on_selector_all("a[href]", _VISIBLE_HREFS):
        target = urldefrag(href).url
        if _internal(target, base_url):
            links.setdefault(target, index)
    return links


def test_search_finds_a_message(browser: Browser, base_url: str) -> None:
    page = _page(browser)
    page.goto(base_url)
    search = page.locator("input.md-search__input")
    search.click()
    search.press_sequentially("SpotEvent")
    results = page.locator(".md-search-result__item a[href*='ctrader_typed.SpotEvent']")
    results.first.wait_for(state="visible")
    href = results.first.evaluate("a => a.href")
    assert urlsplit(href).fragment == "ctrader_typed.SpotEvent", href
    results.first.click()
    page.wait_for_url("**/reference/messages/**")
    heading = page.locator("[id='ctrader_typed.SpotEvent']")
    assert heading.count() == 1
    assert "SpotEvent" in heading.inner_text()
    page.close()


@pytest.mark.parametrize("width", [1280, 400], ids=["desktop", "400px"])
def test_the_trading_guide_is_two_clicks_from_home(browser: Browser, base_url: str, width: int) -> None:
    goal = urljoin(base_url, "guide/trading/")
    page = _page(browser, width)
    page.goto(base_url)
    first_clicks = _visible_links(page, base_url)
    path: list[str] | None = [goal] if goal in first_clicks else None
    for first in first_clicks if path is None else ():
        page.goto(first)
        if goal in _visible_links(page, base_url):
            path = [first, goal]
            break
    assert path is not None, f"{goal} is not within two clicks of the home page at {width} px"

    # Do it as a person would: click the visible links, one page after the other.
    page.goto(base_url)
    for target in path:
        index = _visible_links(page, base_url)[target]
        page.locator("a[href]").nth(index).click()
        page.wait_for_url(target + "*")
    assert page.locator("h1").first.inner_text().rstrip("¶").strip() == "Trading"
    page.close()


def test_no_broken_internal_link(browser: Browser, base_url: str, site: Path) -> None:
    pages = sorted(
        urljoin(base_url, path.relative_to(site).as_posix().removesuffix("index.html"))
        for path in site.rglob("*.html")
        if path.name != "404.html"
    )
    assert len(pages) >= 30, pages
    ids: dict[str, set[str]] = {}
    hrefs: dict[str, set[str]] = {}
    failed_loads: list[str] = []

    page = _page(browser)
    page.on(
        "response",
        lambda response: (
            failed_loads.append(f"{response.status} {response.url}")
            if _internal(response.url, base_url) and response.status >= 400
            else None
        ),
    )
    # A load cut short because the crawl moved on to the next page fails as ERR_ABORTED: not a fault.
    page.on(
        "requestfailed",
        lambda request: (
            failed_loads.append(f"{request.failure} {request.url}")
            if _internal(request.url, base_url) and "ERR_ABORTED" not in (request.failure or "")
            else None
        ),
    )
    for url in pages:
        response = page.goto(url)
        assert response is not None, url
        assert response.ok, url
        ids[url] = set(page.eval_on_selector_all("[id], a[name]", "els => els.map(e => e.id || e.name)"))
        hrefs[url] = set(page.eval_on_selector_all("a[href]", "els => els.map(a => a.href)"))
    page.close()

    broken: list[str] = []
    checked = 0
    for source, links in sorted(hrefs.items()):
        for href in sorted(links):
            if not _internal(href, base_url):
                continue
            target, fragment = urldefrag(href)
            fragment = unquote(fragment)
            if not target.endswith("/") and not Path(urlsplit(target).path).suffix:
                target += "/"
            checked += 1
            if target not in ids:
                if (site / urlsplit(target).path.lstrip("/")).is_file():
                    continue  # a file of the site that is not a page (the sitemap, a download)
                broken.append(f"{source} -> {href}: no such page")
            elif fragment and fragment not in ids[target]:
                broken.append(f"{source} -> {href}: no element #{fragment} on that page")
    assert checked > 1000, checked  # the crawl really saw the reference's cross-links
    assert not broken, "\n".join(broken[:50])
    assert not failed_loads, "\n".join(failed_loads[:50])
