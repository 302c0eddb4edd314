"""The report of the demo warehouse: its numbers match SQL over the views, every chart draws what the data
says, and the page is self-contained. Then it is rendered in headless Chromium: a screenshot is taken and
the charts are checked to be drawn, by the browser's own geometry and by the screenshot's pixels.

The screenshot lands in the pytest tmp dir; with NEWSINGEST_WRITE_ARTIFACTS=1 (`make report-screenshot`)
it is also copied to docs/img/report-demo.png."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import struct
import subprocess
import sys
import xml.etree.ElementTree as ET
import zlib
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from pipeline.report import write_report
from pipeline.views import connect

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
CHARTS = ("per-day", "rates", "extraction", "fetch-outcomes", "latency", "top-stories")
SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def report(demo_warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = write_report(demo_warehouse, out)
    return out, result, out.read_text(encoding="utf-8")


def _charts(page: str) -> dict[str, ET.Element]:
    found = {}
    for m in re.finditer(r"<svg class=\"chart\".*?</svg>", page, re.S):
        el = ET.fromstring(m.group(0))
        found[el.get("data-chart")] = el
    return found


def _marks(svg: ET.Element) -> list[ET.Element]:
    return [e for e in svg.iter() if "mark" in (e.get("class") or "").split()]


def test_report_counts_match_the_views(demo_warehouse: Path, report):
    _out, result, _page = report
    con = connect(demo_warehouse)
    n, stories, sources = con.execute("SELECT count(*), count(DISTINCT coalesce(cluster_id, article_id)), "
                                      "count(DISTINCT source) FROM articles").fetchone()
    assert (result["articles"], result["stories"], result["sources"]) == (n, stories, sources)
    assert result["runs"] == 2 and result["charts"] == len(CHARTS)
    # The extra feed of the second run 404s: failing, but for minutes, not more than a day.
    assert result["feeds_failing"] == 1 and result["feeds_failing_over_a_day"] == 0


def test_every_chart_draws_what_the_data_says(demo_warehouse: Path, report):
    _out, _result, page = report
    con = connect(demo_warehouse)
    charts = _charts(page)
    assert set(charts) == set(CHARTS)
    cells = con.execute("SELECT count(*) FROM (SELECT DISTINCT published_date, source FROM articles)").fetchone()[0]
    assert len(_marks(charts["per-day"])) == cells  # one segment per (day, source) with articles
    status_cells = con.execute("SELECT count(*) FROM (SELECT DISTINCT source, extraction_status FROM articles)").fetchone()[0]
    statuses = con.execute("SELECT count(DISTINCT extraction_status) FROM articles").fetchone()[0]
    assert len(_marks(charts["extraction"])) == status_cells + statuses  # sources, plus the "all sources" row
    clusters = con.execute("SELECT count(*) FROM clusters WHERE copies > 1").fetchone()[0]
    assert len(_marks(charts["top-stories"])) == min(clusters, 15) >= 5
    hosts = con.execute("SELECT count(DISTINCT host) FROM fetch_log").fetchone()[0]
    assert len(_marks(charts["latency"])) == 3 * hosts  # bar to p50, whisker, p95 tick
    outcomes = con.execute("SELECT count(*) FROM (SELECT DISTINCT host, outcome FROM fetch_log)").fetchone()[0]
    assert len(_marks(charts["fetch-outcomes"])) == outcomes
    # Segment heights in the per-day chart add up to the day totals, to the pixel.
    for mark in _marks(charts["per-day"]):
        assert float(mark.get("height")) > 0 and float(mark.get("width")) > 0
    # The demo web's outcomes: feeds answered 304 in the second run, one page 404s, the extra feed 404s.
    legend = {t.text for t in charts["fetch-outcomes"].iter(f"{SVG}text")}
    assert {"ok", "not_modified", "http_error"} <= legend


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []
        self.tags: set[str] = set()

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        for name, value in attrs:
            if name in ("src", "href", "xlink:href", "srcset", "action", "data") and value and not value.startswith("#"):
                self.refs.append(value)


def test_the_page_is_self_contained(report):
    _out, _result, page = report
    parser = _Refs()
    parser.feed(page)
    assert parser.refs == []  # nothing to fetch: no script, stylesheet, font, image or frame
    assert not parser.tags & {"script", "link", "img", "iframe", "object", "embed"}
    assert "url(" not in page and "@import" not in page
    assert "default-src 'none'" in page  # and the CSP forbids fetching anything anyway


def test_report_command(demo_warehouse: Path, tmp_path: Path):
    env = {**os.environ, "NEWSINGEST_LOG_FORMAT": "text"}
    out = tmp_path / "r.html"
    proc = subprocess.run([sys.executable, "-m", "pipeline.cli", "report", "--warehouse", str(demo_warehouse),
                           "--out", str(out), "--json"], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["path"] == str(out) and out.stat().st_size > 10_000
    missing = subprocess.run([sys.executable, "-m", "pipeline.cli", "report", "--warehouse", str(tmp_path / "nope"),
                              "--out", str(out)], capture_output=True, text=True, env=env, timeout=60)
    assert missing.returncode == 1
    assert f"no warehouse at {tmp_path / 'nope'}; run `newsingest run --config FILE" in missing.stderr
    bad_out = subprocess.run([sys.executable, "-m", "pipeline.cli", "report", "--warehouse", str(demo_warehouse),
                              "--out", str(tmp_path / "no" / "r.html")], capture_output=True, text=True, env=env,
                             timeout=60)
    assert bad_out.returncode == 1 and "does not exist; create it or choose another --out" in bad_out.stderr


# ---------------------------------------------------------------------------------------------- Chromium


def chromium() -> str:
    for name in CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    pytest.skip("headless Chromium is not installed (apt-get install -y chromium; `make test` tries it as root)")


def _browser(binary: str, profile: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    cmd = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
           "--force-device-scale-factor=1", f"--user-data-dir={profile}", *args]
    return subprocess.run(cmd, capture_output=True, timeout=120)


MEASURE = """<script>
(function () {
  const charts = [...document.querySelectorAll('svg.chart')].map(function (svg) {
    const r = svg.getBoundingClientRect();
    const marks = [...svg.querySelectorAll('.mark')].map(function (m) {
      const b = m.getBBox(), c = m.getBoundingClientRect();
      return {w: b.width, h: b.height, cx: c.left + c.width / 2 + scrollX, cy: c.top + c.height / 2 + scrollY,
              fill: m.getAttribute('fill'), tag: m.tagName};
    });
    return {id: svg.dataset.chart, x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height, marks: marks};
  });
  const out = {charts: charts, width: document.documentElement.scrollWidth,
               height: document.documentElement.scrollHeight};
  const pre = document.createElement('pre');
  pre.id = 'measure';
  pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


def decode_png(data: bytes) -> np.ndarray:
    """RGB pixels of an 8-bit, non-interlaced RGB or RGBA PNG (what Chromium writes)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat = 8, []
    width = height = depth = ctype = interlace = None
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            width, height, depth, ctype, _comp, _filt, interlace = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        pos += 12 + n
    assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
    bpp = 4 if ctype == 6 else 3
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    out = np.zeros((height, stride), dtype=np.uint8)
    prev = np.zeros(stride, dtype=np.int32)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        line = np.frombuffer(raw, np.uint8, stride, y * (stride + 1) + 1).astype(np.int32)
        if kind == 0:
            cur = line
        elif kind == 1:  # Sub: a running sum per channel
            cur = np.cumsum(line.reshape(width, bpp), axis=0).reshape(-1) & 0xFF
        elif kind == 2:  # Up
            cur = (line + prev) & 0xFF
        else:  # Average and Paeth depend on the reconstructed left neighbour: byte by byte
            lb, pb, cb = line.tolist(), prev.tolist(), [0] * stride
            for i in range(stride):
                a = cb[i - bpp] if i >= bpp else 0
                if kind == 3:
                    cb[i] = (lb[i] + ((a + pb[i]) >> 1)) & 0xFF
                    continue
                b, c = pb[i], (pb[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb_, pc = abs(p - a), abs(p - b), abs(p - c)
                cb[i] = (lb[i] + (a if pa <= pb_ and pa <= pc else b if pb_ <= pc else c)) & 0xFF
            cur = np.array(cb, dtype=np.int32)
        out[y] = cur
        prev = cur
    return out.reshape(height, width, bpp)[:, :, :3]


def _hex(colour: str) -> tuple[int, int, int]:
    return tuple(int(colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


@pytest.mark.slow
def test_report_renders_in_headless_chromium(report, tmp_path: Path):
    binary = chromium()
    out, _result, page = report
    # 1. Layout: the browser's own geometry of every chart and every mark, via a measuring copy of the page
    # (the same page plus a script that writes the geometry into the DOM; the CSP is lifted for it).
    probe = tmp_path / "probe.html"
    probe.write_text(re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", page)
                     .replace("</body>", MEASURE + "</body>"), encoding="utf-8")
    dom = _browser(binary, tmp_path / "profile", "--window-size=1280,2400", "--dump-dom", probe.as_uri())
    assert dom.returncode == 0, dom.stderr.decode()[-2000:]
    m = re.search(r'<pre id="measure">(.*?)</pre>', dom.stdout.decode())
    assert m, "the measuring script did not run"
    layout = json.loads(html.unescape(m.group(1)))
    charts = {c["id"]: c for c in layout["charts"]}
    assert set(charts) == set(CHARTS)
    for c in charts.values():
        assert c["w"] > 600 and c["h"] > 40, c["id"]  # laid out at the column width
        drawn = [k for k in c["marks"] if k["w"] > 0 and k["h"] > 0]
        assert drawn, f"chart {c['id']} has no mark with an area"
        assert all(k["w"] > 0 or k["h"] > 0 for k in c["marks"]), c["id"]  # lines have one dimension

    # 2. Pixels: a full-page screenshot (window as tall as the page).
    height = min(int(layout["height"]) + 8, 16000)
    png = tmp_path / "report-demo.png"
    shot = _browser(binary, tmp_path / "profile", f"--window-size=1280,{height}", f"--screenshot={png}", out.as_uri())
    assert shot.returncode == 0 and png.exists(), shot.stderr.decode()[-2000:]
    if os.environ.get("NEWSINGEST_WRITE_ARTIFACTS") == "1":
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(png, ROOT / "docs" / "img" / "report-demo.png")
    img = decode_png(png.read_bytes())
    assert img.shape == (height, 1280, 3)
    colours = np.unique(img.reshape(-1, 3)[:: 7], axis=0)
    assert len(colours) > 50, "the screenshot is (nearly) blank"
    saturated = (img.max(axis=2).astype(int) - img.min(axis=2).astype(int)) > 60
    for c in charts.values():
        x0, y0 = int(c["x"]), int(c["y"])
        region = saturated[y0:y0 + int(c["h"]), x0:x0 + int(c["w"])]
        assert region.mean() > 0.005 and region.sum() > 300, f"chart {c['id']} shows no coloured pixels"
        # The centre of each bar with an area has the bar's fill colour.
        checked = 0
        for k in c["marks"]:
            if k["tag"] == "rect" and k["w"] >= 4 and k["h"] >= 4 and k["fill"]:
                px = img[int(k["cy"]), int(k["cx"])]
                assert np.abs(px.astype(int) - np.array(_hex(k["fill"]))).max() <= 3, (c["id"], k, px)
                checked += 1
        assert checked, c["id"]
    # Outside the charts, the page background is white.
    assert (img[2, 2] == 255).all()
