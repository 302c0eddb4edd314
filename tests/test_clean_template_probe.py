"""A text's TemplateProbe (`preclean_text`): the keys a site template counts and tests, taken where the page
is extracted, give the template and the cleaning the text itself gives."""

from __future__ import annotations

import pickle

import numpy as np

from pipeline.clean import SiteTemplate, clean_text, line_keys, preclean_text

FURNITURE = ["Follow the Daily Planet on every platform", "The Daily Planet is read in forty countries"]


def _text(n: int) -> str:
    body = [f"Story {n} begins with the council meeting on line {i} and goes on for a while about it." for i in range(6)]
    return "\n".join([FURNITURE[0], *body, FURNITURE[1], f"  {FURNITURE[0]}  "])


def test_a_template_observing_keys_is_the_template_observing_texts():
    by_text, by_keys = SiteTemplate(), SiteTemplate()
    for n in range(8):
        by_text.observe(f"d{n}", _text(n))
        by_keys.observe_keys(f"d{n}", *line_keys(_text(n)))
    by_keys.observe_keys("d0", *line_keys(_text(99)))  # an id counts once
    assert by_text.to_dict() == by_keys.to_dict()  # counts, and the order of the lines, are the same
    assert by_text.n_docs == 8 and by_text.is_template(FURNITURE[0])


def test_a_probe_tells_whether_a_template_changes_the_cleaning():
    template = SiteTemplate()
    for n in range(8):
        template.observe(f"d{n}", _text(n))
    cleaned, probe = preclean_text(_text(50), title="Story 50")
    assert template.marks_any(probe)  # the furniture lines are template lines
    assert clean_text(_text(50), title="Story 50", template=template).text != cleaned.text

    plain = "\n".join(_text(51).splitlines()[1:-2])  # the body only
    cleaned, probe = preclean_text(plain, title="Story 51")
    assert not template.marks_any(probe)
    assert clean_text(plain, title="Story 51", template=template).text == cleaned.text
    assert cleaned.text == clean_text(plain, title="Story 51").text and cleaned.removed == []


def test_probes_and_fingerprints_pickle_to_equal_writable_arrays():
    from pipeline.dedup import fingerprint

    _, probe = preclean_text(_text(1))
    fp = fingerprint(_text(1))
    for obj, arrays in ((probe, ("keys", "long_keys", "tested", "tested_long")), (fp, ("minhash", "sample"))):
        back = pickle.loads(pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL))
        for name in arrays:
            a, b = getattr(obj, name), getattr(back, name)
            assert a.dtype == b.dtype and np.array_equal(a, b) and b.flags.writeable
    assert pickle.loads(pickle.dumps(fp)).content_hash == fp.content_hash
