"""The built site draws its Mermaid diagrams with the mermaid.js it serves itself, never a CDN's.

``docs/mermaid_js.py`` (an MkDocs hook) adds the pinned official bundle to the site. These tests
build the site, check that every page with a diagram loads that bundle and no remote script,
check the hook refuses a package whose digest is not the pinned one, and (where Chromium is
installed) render each page's diagrams with the bundle in a headless browser.

Run with ``pytest docs/test_site.py`` (``nox -s docs`` does).
"""

from __future__ import annotations

import base64
import hashlib
import html
import io
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tarfile
from pathlib import Path

import mermaid_js
import pytest
from mkdocs.exceptions import PluginError

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
_DIAGRAM = re.compile(r'<pre class="mermaid"><code>(?P<source>.*?)</code></pre>', re.DOTALL)
_SCRIPT_SRC = re.compile(r'<script[^>]*\bsrc="(?P<src>[^"]+)"')


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built strictly from this checkout."""
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return out


def _diagram_pages(site: Path) -> dict[Path, list[str]]:
    """Each built page with Mermaid diagrams, and their sources."""
    pages = {}
    for page in sorted(site.rglob("*.html")):
        sources = [html.unescape(m["source"]) for m in _DIAGRAM.finditer(page.read_text(encoding="utf-8"))]
        if sources:
            pages[page] = sources
    return pages


def test_the_site_serves_the_pinned_mermaid_bundle(site: Path) -> None:
    bundle = (site / mermaid_js.SITE_BUNDLE).read_bytes()
    assert bundle == (mermaid_js.CACHE / "mermaid.min.js").read_bytes()
    assert f'"{mermaid_js.VERSION}"'.encode() in bundle  # the bundle's own version string
    assert len(bundle) > 1_000_000
    licence = (site / mermaid_js.SITE_LICENSE).read_text(encoding="utf-8")
    assert licence.startswith("The MIT License (MIT)")


def test_diagram_pages_load_the_local_bundle_and_no_remote_script(site: Path) -> None:
    pages = _diagram_pages(site)
    assert site / "concepts" / "architecture" / "index.html" in pages
    for page in pages:
        scripts = _SCRIPT_SRC.findall(page.read_text(encoding="utf-8"))
        local = "../" * (len(page.relative_to(site).parts) - 1) + mermaid_js.SITE_BUNDLE
        assert local in scripts, f"{page} does not load {local}: {scripts}"
        remote = [src for src in scripts if re.match(r"(https?:)?//", src)]
        assert not remote, f"{page} loads remote scripts {remote}"


def _fake_npm(tmp_path: Path, tarball: bytes) -> Path:
    """A directory with an ``npm`` whose ``pack`` writes ``tarball`` to ``--pack-destination``."""
    (tmp_path / f"mermaid-{mermaid_js.VERSION}.tgz").write_bytes(tarball)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    npm = bin_dir / "npm"
    npm.write_text(
        f"#!{sys.executable}\n"
        "import shutil, sys\n"
        "args = sys.argv[1:]\n"
        f"assert args[:2] == ['pack', 'mermaid@{mermaid_js.VERSION}'], args\n"
        "destination = args[args.index('--pack-destination') + 1]\n"
        f"shutil.copy({str(tmp_path / f'mermaid-{mermaid_js.VERSION}.tgz')!r}, destination)\n",
        encoding="utf-8",
    )
    npm.chmod(npm.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_a_package_with_another_digest_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tarball = _tarball({"package/dist/mermaid.min.js": b"alert('not mermaid')", "package/LICENSE": b"MIT"})
    monkeypatch.setenv("PATH", str(_fake_npm(tmp_path, tarball)))
    cache = tmp_path / "cache" / "mermaid"
    digest = "sha512-" + base64.b64encode(hashlib.sha512(tarball).digest()).decode()
    with pytest.raises(PluginError) as refused:
        mermaid_js.fetch(cache)
    assert str(refused.value) == (
        f"mermaid-{mermaid_js.VERSION}.tgz has integrity {digest}, not the pinned {mermaid_js.INTEGRITY}"
    )
    assert not cache.parent.exists()


def test_the_pinned_package_is_unpacked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    files = {"package/dist/mermaid.min.js": b"var mermaid = {};", "package/LICENSE": b"MIT", "package/x": b""}
    tarball = _tarball(files)
    monkeypatch.setenv("PATH", str(_fake_npm(tmp_path, tarball)))
    monkeypatch.setattr(mermaid_js, "INTEGRITY", mermaid_js.integrity(tarball))
    cache = tmp_path / "cache" / "mermaid"
    mermaid_js.fetch(cache)
    assert sorted(path.name for path in (tmp_path / "cache").iterdir()) == ["mermaid"]
    assert {path.name: path.read_bytes() for path in cache.iterdir()} == {
        "mermaid.min.js": b"var mermaid = {};",
        "LICENSE": b"MIT",
    }


def test_without_npm_the_build_says_what_it_needs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PluginError, match="needs npm"):
        mermaid_js.fetch(tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


#: Draws each diagram with the site's bundle into the page (or writes the error), then drops the
#: scripts, so the DOM holds only what was drawn.
_HARNESS = """<!doctype html>
<html><body><div id="out"></div>
<script src="{bundle}"></script>
<script>
mermaid.initialize({{startOnLoad: false}});
(async () => {{
  for (const [index, source] of {sources}.entries()) {{
    try {{
      const {{svg}} = await mermaid.render("diagram" + index, source);
      document.getElementById("out").insertAdjacentHTML("beforeend", svg);
    }} catch (error) {{
      document.getElementById("out").insertAdjacentHTML("beforeend", "<p>ERROR " + error + "</p>");
    }}
  }}
  document.querySelectorAll("script").forEach((script) => script.remove());
}})();
</script></body></html>
"""


#: Headless Chromium, given time to run the page's scripts.
CHROMIUM = ("chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000")


def _render(site: Path, sources: list[str], tmp_path: Path) -> str:
    """The DOM of a headless Chromium page that drew ``sources`` with the site's bundle."""
    harness = tmp_path / "harness.html"
    bundle = (site / mermaid_js.SITE_BUNDLE).as_uri()
    harness.write_text(_HARNESS.format(bundle=bundle, sources=json.dumps(sources)), encoding="utf-8")
    done = subprocess.run(
        [*CHROMIUM, "--dump-dom", harness.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return done.stdout


#: Outside CI a machine without Chromium skips the drawing tests; CI (.ci/run installs Chromium)
#: fails them instead, so they never pass there by not running.
needs_chromium = pytest.mark.skipif(
    shutil.which("chromium") is None and not os.environ.get("CI"), reason="needs Debian's chromium"
)


@needs_chromium
def test_every_diagram_renders_with_the_bundle(site: Path, tmp_path: Path) -> None:
    for page, sources in _diagram_pages(site).items():
        dom = _render(site, sources, tmp_path)
        assert "ERROR" not in dom, f"{page}: {dom[dom.find('ERROR') :][:300]}"
        drawn = re.findall(r'<svg[^>]* id="diagram\d+"', dom)
        assert len(drawn) == len(sources), f"{page}: {len(drawn)} of {len(sources)} diagrams drawn"


@needs_chromium
def test_the_architecture_diagram_draws_every_layer(site: Path, tmp_path: Path) -> None:
    (source,) = _diagram_pages(site)[site / "concepts" / "architecture" / "index.html"]
    svg = _render(site, [source], tmp_path)
    titles = re.findall(r"<b>([^<]+)</b>", svg)
    assert titles == [
        "Applications",
        "Public API",
        "Gateway",
        "Engine",
        "Helpers and the built-in provider",
        "Services",
        "The provider contract",
        "Foundations",
    ]
    assert len(re.findall(r'<path[^>]*class="[^"]*flowchart-link', svg)) == 7
