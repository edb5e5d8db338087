"""MkDocs hook: the site serves mermaid.js itself, so its diagrams render without a CDN.

Material for MkDocs draws a ```mermaid block with the page's global ``mermaid`` when the page
defines one, and else loads mermaid.js from a CDN. This hook adds the official bundle to the site
as ``assets/javascripts/mermaid.min.js`` (mkdocs.yml lists it in ``extra_javascript``), with its
licence beside it.

The bundle is the npm package ``mermaid`` at the pinned ``VERSION`` (the mermaid project's own
build, MIT). The first build fetches the package with ``npm pack``, refuses it unless its sha512
is the pinned ``INTEGRITY`` (the one the npm registry publishes for that version), and keeps the
two files in ``.cache/mermaid-VERSION/`` at the checkout's root; later builds read them there.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files

#: The newest 11.x: Material for MkDocs 9 is written against mermaid 11 (its CDN fallback
#: loads ``mermaid@11``).
VERSION = "11.17.2"
#: The registry's ``dist.integrity`` of ``mermaid@11.17.2`` (``npm view mermaid@VERSION dist.integrity``).
INTEGRITY = "sha512-V6K3C8EBdEsPFZXSKMJe6ppQOENxuHARr9GvHX4hh47lAbhMRD9qf4oEK7LoaRQxULMa80/qt5gHO73aCleBBg=="
#: Where the bundle and its licence are on the site.
SITE_BUNDLE = "assets/javascripts/mermaid.min.js"
SITE_LICENSE = "assets/javascripts/mermaid.LICENSE.txt"
#: The package's files the site takes, and their names in the cache.
PACKAGE_FILES = {"package/dist/mermaid.min.js": "mermaid.min.js", "package/LICENSE": "LICENSE"}
CACHE = Path(__file__).resolve().parents[1] / ".cache" / f"mermaid-{VERSION}"


def integrity(data: bytes) -> str:
    """``data``'s digest in npm's ``integrity`` form (``sha512-`` and the base64 digest)."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def fetch(cache: Path) -> None:
    """Put the pinned package's ``PACKAGE_FILES`` into ``cache``, or raise ``PluginError``."""
    npm = shutil.which("npm")
    if npm is None:
        raise PluginError(
            f"the docs serve mermaid.js {VERSION} from the npm package 'mermaid', and fetching it "
            "needs npm (Node.js) on PATH"
        )
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run(
            [npm, "pack", f"mermaid@{VERSION}", "--pack-destination", scratch, "--ignore-scripts"],
            capture_output=True,
            text=True,
            check=False,
        )
        tarball = Path(scratch) / f"mermaid-{VERSION}.tgz"
        if done.returncode != 0 or not tarball.is_file():
            raise PluginError(f"npm pack mermaid@{VERSION} failed: {done.stderr.strip()}")
        got = integrity(tarball.read_bytes())
        if got != INTEGRITY:
            raise PluginError(f"mermaid-{VERSION}.tgz has integrity {got}, not the pinned {INTEGRITY}")
        cache.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{cache.name}.", dir=cache.parent))
        try:
            with tarfile.open(tarball) as archive:
                for member, name in PACKAGE_FILES.items():
                    source = archive.extractfile(member)
                    if source is None:
                        raise PluginError(f"mermaid-{VERSION}.tgz has no file {member}")
                    (staging / name).write_bytes(source.read())
            staging.chmod(0o755)
            shutil.rmtree(cache, ignore_errors=True)
            os.replace(staging, cache)
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add the bundle and its licence to the site, fetching them first if the cache lacks them."""
    if not all((CACHE / name).is_file() for name in PACKAGE_FILES.values()):
        fetch(CACHE)
    for site_path, name in ((SITE_BUNDLE, "mermaid.min.js"), (SITE_LICENSE, "LICENSE")):
        files.append(File.generated(config, site_path, abs_src_path=str(CACHE / name)))
    return files
