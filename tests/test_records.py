"""Records pickled by their fields (`records.pickled_by_fields`): each comes back equal, an older pickle of a
record (its slots as a dict) still loads, and a dataclass the scheme would get wrong is refused."""

from __future__ import annotations

import pickle
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from pipeline.clean import CleanResult
from pipeline.records import Extracted, FeedItem, FetchResult, pickled_by_fields
from pipeline.run import PageOutcome, PageTask, Precleaned

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def page() -> PageOutcome:
    item = FeedItem("a", "http://a.test/feed.xml", "http://a.test/1", "guid-1", title="One", published_at=NOW)
    fetch = FetchResult(url=item.url, kind="page", outcome="ok", final_url=item.url, http_status=200,
                        content_type="text/html", charset="utf-8", started_at=NOW)
    extracted = Extracted(status="ok", title="One", text=None, authors=["Jane Roe"], language="en")
    cleaned = CleanResult(text="Body line.", title="One", authors=["Jane Roe"], published_at=NOW)
    return PageOutcome(PageTask("0123456789abcdef", item, 1, NOW), fetch, extracted, NOW, None,
                       Precleaned(cleaned, None, None))


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_round_trip(protocol: int):
    po = page()
    assert pickle.loads(pickle.dumps(po, protocol=protocol)) == po
    for record in (po.task, po.task.item, po.fetch, po.extracted, po.precleaned, po.precleaned.cleaned):
        cls, values = record.__reduce__()
        assert cls is type(record) and len(values) == len(record.__slots__)


def test_an_older_pickle_still_loads(monkeypatch: pytest.MonkeyPatch):
    # what pickle wrote before (the default for a slotted object: its slots as a dict, set back one by one)
    po = page()
    for cls in (PageOutcome, PageTask, FeedItem, FetchResult, Extracted, Precleaned, CleanResult):
        monkeypatch.delattr(cls, "__reduce__")
    old = pickle.dumps(po, protocol=pickle.HIGHEST_PROTOCOL)
    monkeypatch.undo()
    assert PageOutcome.__reduce__ is not object.__reduce__
    assert pickle.loads(old) == po
    assert len(old) > len(pickle.dumps(po, protocol=pickle.HIGHEST_PROTOCOL))  # the slots' names, each time


def test_refuses_what_it_would_get_wrong():
    with pytest.raises(TypeError):
        @pickled_by_fields
        @dataclass(slots=True)
        class Derived:
            a: int
            b: int = field(init=False, default=0)

    with pytest.raises(TypeError):
        @pickled_by_fields
        @dataclass(slots=True)
        class Checked:
            a: int
            b: int

            def __post_init__(self) -> None:
                self.b = max(self.a, self.b)
