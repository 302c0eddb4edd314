"""pipeline.columns: compact columns give back what was put in them, and HexIndex answers as a dict would."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa

from pipeline.columns import HexColumn, HexIndex, StringColumn, U64Table, hex_u64


def test_a_string_column_gives_back_its_strings_and_none():
    urls = ["https://a.example/x?q=1", None, "https://b.example/ünï/\udc80", "", "https://c.example/"]
    col = StringColumn(urls)
    assert list(col) == urls and len(col) == 5 and col[-1] == urls[-1] and col[1:3] == urls[1:3]
    col[0] = "https://replaced.example/"
    col[1] = "https://was-none.example/"
    col[4] = None
    assert list(col) == ["https://replaced.example/", "https://was-none.example/", urls[2], "", None]


def test_a_hex_column_keeps_hex_values_as_bytes_and_any_other_string_as_it_is():
    ids = [f"{k * 0x9E3779B97F4A7C15 % 2**64:016x}" for k in range(50)]
    odd = ["0" * 16, "ABCDEF0123456789", "short", "0" * 17, "ab cd ef 01 23 4", "ghijklmnopqrstuv"]
    col = HexColumn(8, ids + odd)
    assert list(col) == ids + odd and len(col) == 56 and col[-2] == odd[-2] and col[2:4] == ids[2:4]
    assert [col.is_hex(i) for i in range(50, 56)] == [True, False, False, False, False, False] and not col.all_hex
    assert HexColumn(8, ids).all_hex
    assert col.prefixes()[:50].tolist() == [int(i, 16) for i in ids]
    assert list(col.take([51, 3, 50])) == [odd[1], ids[3], odd[0]]
    assert len(col._bytes) == 8 * 56, "8 bytes a value"
    arrow = HexColumn(16)
    hashes = [f"{random.Random(k).getrandbits(128):032x}" for k in range(10)]
    arrow.extend_arrow(pa.chunked_array([hashes[:4], hashes[4:]]), chunk=3)
    assert list(arrow) == hashes
    assert hex_u64("00000000000000ff") == 255 and hex_u64("00000000000000FF") is None and hex_u64("ff") is None


def test_a_hex_index_answers_as_a_dict_of_first_positions_would():
    rng = random.Random(3)
    stem = f"{rng.getrandbits(64):016x}"
    pool = ([f"{rng.getrandbits(128):032x}" for _ in range(200)]
            + [stem + f"{rng.getrandbits(64):016x}" for _ in range(5)]  # the same first 8 bytes
            + ["not hex", "A" * 32])
    col = HexColumn(16)
    index = HexIndex(col, recent_max=16)  # merged into its arrays many times
    model: dict[str, int] = {}
    for pos in range(3000):
        value = rng.choice(pool)
        assert index.get(value) == model.get(value)
        col.append(value)
        index.add(value, pos)
        model.setdefault(value, pos)
    assert all(index.get(v) == model.get(v) for v in pool) and index.get("f" * 32) is None

    built = HexIndex(col)
    built.build()
    assert all(built.get(v) == model.get(v) for v in pool)
    some = np.arange(0, 3000, 3)
    part = HexIndex(col)
    part.build(some)
    want: dict[str, int] = {}
    for p in some.tolist():
        want.setdefault(col[p], p)
    assert all(part.get(v) == want.get(v) for v in pool)


def test_a_u64_table_answers_as_a_dict_would_across_merges_and_in_place_updates():
    rng = random.Random(9)
    keys = [rng.getrandbits(64) for _ in range(300)]
    table, model = U64Table(width=2), {}
    for step in range(4000):
        key = rng.choice(keys)
        assert table.find(key) == model.get(key)
        row = (rng.randrange(-5, 50), rng.randrange(-(2**62), 2**62))
        table.put(key, row)
        model[key] = row
        if step % 97 == 0:
            table.merge()
            assert table.n_new == 0
    assert all(table.find(k) == model.get(k) for k in keys) and table.find(12345) is None
    table.load(np.array(sorted(model), dtype=np.uint64), np.array([model[k][0] for k in sorted(model)]),
               np.array([model[k][1] for k in sorted(model)]))
    assert all(table.find(k) == model.get(k) for k in keys)
