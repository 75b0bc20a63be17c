"""The listening page loads in a real browser: every audio element has a non-zero duration and
every image renders (headless Debian chromium; skipped when it is absent)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

PAGE = Path(__file__).resolve().parents[1] / "docs" / "listen" / "index.html"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _dump_dom(page: Path) -> str:
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--no-first-run", "--virtual-time-budget=5000", "--dump-dom", page.as_uri()]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout


def _attrs(tag: str) -> dict[str, str]:
    return dict(re.findall(r'([\w-]+)="([^"]*)"', tag))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
@pytest.mark.skipif(not PAGE.is_file(), reason="the listening page has not been generated")
def test_every_audio_element_loads_and_every_image_renders():
    dom = _dump_dom(PAGE)
    audios = [_attrs(t) for t in re.findall(r"<audio[^>]*>", dom)]
    images = [_attrs(t) for t in re.findall(r"<img[^>]*>", dom)]
    assert len(audios) >= 8 and images, f"page has {len(audios)} audio, {len(images)} images"
    for a in audios:
        assert (PAGE.parent / a["src"]).is_file(), a["src"]
        assert int(a.get("data-ready", "0")) >= 1, f"{a['src']} did not load: {a}"
        assert float(a.get("data-duration", "nan")) > 0, f"{a['src']} has no duration: {a}"
    for i in images:
        assert int(i.get("data-width", "0")) > 0, f"{i['src']} did not render: {i}"


@pytest.mark.skipif(not PAGE.is_file(), reason="the listening page has not been generated")
def test_listening_page_stays_small():
    total = sum(f.stat().st_size for f in PAGE.parent.iterdir())
    assert total <= 3_000_000, f"docs/listen holds {total / 1e6:.2f} MB"


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed")
def test_a_missing_file_is_caught(tmp_path):
    """The check can fail: a page whose audio file is missing reports no duration."""
    src = PAGE.read_text() if PAGE.is_file() else None
    if src is None:
        pytest.skip("the listening page has not been generated")
    from examples.telugu_codec.listening_page import _SCRIPT

    page = tmp_path / "index.html"
    page.write_text(f'<html><body><audio preload="auto" src="missing.flac"></audio>{_SCRIPT}'
                    "</body></html>")
    a = _attrs(re.findall(r"<audio[^>]*>", _dump_dom(page))[0])
    assert not float(a.get("data-duration", "nan")) > 0
