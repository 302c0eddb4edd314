"""Compact in-memory columns for what a run or the dedup index keeps of every article.

A str costs ~50 bytes more than its characters, an int above 256 28 bytes, a dict entry ~100 bytes with
its key. Kept for every article of a big run or of the dedup window, such objects were most of what the
process grew by, and, made among the short-lived objects of each feed or page, they kept the interpreter's
small-object arenas from being freed. These columns keep the values as bytes in one buffer each.

- `StringColumn`: optional strings (the tasks' URLs);
- `HexColumn`: strings of a fixed number of hex digits (article ids, content hashes), as their bytes;
- `HexIndex`: a HexColumn's values -> the first position holding each, in sorted numpy arrays;
- `utc_us`: a time as microseconds since the epoch, as time columns hold it.
"""

from __future__ import annotations

import array
import bisect
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_us(dt: datetime | None) -> int:
    """Microseconds since the epoch (None: now; a naive time is taken as UTC)."""
    if dt is None:
        dt = datetime.now(UTC)
    elif dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return (dt - EPOCH) // timedelta(microseconds=1)


class StringColumn(Sequence[str | None]):
    """Optional strings end to end in one buffer, UTF-8, with an offset each. Setting a value appends it
    (the old bytes stay: few are replaced)."""

    def __init__(self, values: Iterable[str | None] = ()) -> None:
        self._buf = bytearray()
        self._start = array.array("q")  # where each value begins in `_buf`, -1: None
        self._end = array.array("q")
        for v in values:
            self.append(v)

    def __len__(self) -> int:
        return len(self._start)

    def _put(self, value: str | None) -> tuple[int, int]:
        if value is None:
            return -1, -1
        start = len(self._buf)
        self._buf += value.encode("utf-8", "surrogatepass")
        return start, len(self._buf)

    def append(self, value: str | None) -> None:
        start, end = self._put(value)
        self._start.append(start)
        self._end.append(end)

    def __setitem__(self, i: int, value: str | None) -> None:
        self._start[i], self._end[i] = self._put(value)

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        start = self._start[i]
        return None if start < 0 else self._buf[start:self._end[i]].decode("utf-8", "surrogatepass")

    def __iter__(self) -> Iterator[str | None]:
        return (self[i] for i in range(len(self)))


def hex_bytes(value: str, width: int) -> bytes | None:
    """The `width` bytes that `value` spells in lowercase hex digits, else None."""
    if len(value) != 2 * width:
        return None
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        return None
    return raw if raw.hex() == value else None  # fromhex also takes upper case and spaces


def hex_u64(value: str) -> int | None:
    """The number that 16 lowercase hex digits spell (an article id), else None."""
    raw = hex_bytes(value, 8)
    return None if raw is None else int.from_bytes(raw, "big")


class HexColumn(Sequence[str]):
    """Strings of `2 * width` lowercase hex digits (article ids: 8 bytes, content hashes: 16), kept as their
    `width` bytes; any other string (an id given by a caller, say) in a dict beside."""

    def __init__(self, width: int, values: Iterable[str] = ()) -> None:
        self.width = width
        self._bytes = bytearray()
        self._other: dict[int, str] = {}
        self.extend(values)

    def __len__(self) -> int:
        return len(self._bytes) // self.width

    def append(self, value: str) -> None:
        raw = hex_bytes(value, self.width)
        if raw is None:
            self._other[len(self)] = value
            raw = bytes(self.width)
        self._bytes += raw

    def extend(self, values: Iterable[str]) -> None:
        for v in values:
            self.append(v)

    def extend_arrow(self, column: Any, chunk: int = 1 << 16) -> None:
        """The values of a pyarrow string (Chunked)Array, a chunk of Python strings at a time."""
        for lo in range(0, len(column), chunk):
            self.extend(column.slice(lo, chunk).to_pylist())

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(len(self))[i]]
        if i < 0:
            i += len(self)
        if self._other:
            other = self._other.get(i)
            if other is not None:
                return other
        if not 0 <= i < len(self):
            raise IndexError(i)
        w = self.width
        return self._bytes[i * w:(i + 1) * w].hex()

    def __iter__(self) -> Iterator[str]:
        return (self[i] for i in range(len(self)))

    def is_hex(self, i: int) -> bool:
        return not self._other or i not in self._other

    @property
    def all_hex(self) -> bool:
        """Whether every value is held as bytes (none as a string beside)."""
        return not self._other

    def prefixes(self) -> np.ndarray:
        """Each value's first 8 bytes as a big-endian uint64 (the number its first 16 digits spell; 0 for
        the values kept as strings)."""
        a = np.frombuffer(self._bytes, dtype=np.uint8).reshape(-1, self.width)[:, :8]
        return np.ascontiguousarray(a).view(">u8").reshape(-1).astype(np.uint64)

    def take(self, keep: Sequence[int]) -> HexColumn:
        out = HexColumn(self.width)
        w, src = self.width, self._bytes
        out._bytes = bytearray(b"".join(src[i * w:(i + 1) * w] for i in keep))
        out._other = {new: self._other[old] for new, old in enumerate(keep) if old in self._other}
        return out


class U64Table:
    """uint64 keys -> a row of `width` int64 values: sorted `array` columns searched with `bisect` (0.3 us;
    numpy's searchsorted costs 1.9 us for one value), plus a dict of the latest additions, which `merge`
    moves into the columns (the owner chooses when: a merge copies the columns)."""

    def __init__(self, width: int = 1) -> None:
        self._keys = array.array("Q")
        self._values = [array.array("q") for _ in range(width)]
        self._new: dict[int, tuple[int, ...]] = {}

    @property
    def n_new(self) -> int:
        return len(self._new)

    def _index(self, key: int) -> int:
        keys = self._keys
        i = bisect.bisect_left(keys, key)
        return i if i < len(keys) and keys[i] == key else -1

    def find(self, key: int) -> tuple[int, ...] | None:
        row = self._new.get(key)
        if row is None:  # (inline: this is on the dedup index's every lookup)
            keys = self._keys
            i = bisect.bisect_left(keys, key)
            if i < len(keys) and keys[i] == key:
                values = self._values
                row = (values[0][i],) if len(values) == 1 else tuple([v[i] for v in values])
        return row

    def put(self, key: int, row: tuple[int, ...]) -> None:
        """`key`'s row (replaced in place when the columns hold it, else an addition)."""
        i = -1 if key in self._new else self._index(key)
        if i >= 0:
            for column, value in zip(self._values, row, strict=True):
                column[i] = value
        else:
            self._new[key] = row

    def merge(self) -> None:
        if not self._new:
            return
        keys = np.fromiter(self._new, dtype=np.uint64, count=len(self._new))
        rows = np.array(list(self._new.values()), dtype=np.int64).reshape(len(self._new), -1)
        self._new = {}
        order = np.argsort(keys)
        keys, rows = keys[order], rows[order]
        old = np.frombuffer(self._keys, dtype=np.uint64)
        at = np.searchsorted(old, keys)
        merged = [np.insert(old, at, keys)]
        merged += [np.insert(np.frombuffer(v, dtype=np.int64), at, rows[:, j]) for j, v in enumerate(self._values)]
        del old  # (a view of the array it replaces)
        self._keys = array.array("Q", merged[0].tobytes())
        self._values = [array.array("q", m.tobytes()) for m in merged[1:]]

    def load(self, keys: np.ndarray, *values: np.ndarray) -> None:
        """Replace everything by these rows (`keys` sorted and distinct)."""
        self._new = {}
        self._keys = array.array("Q", np.ascontiguousarray(keys, dtype=np.uint64).tobytes())
        self._values = [array.array("q", np.ascontiguousarray(v, dtype=np.int64).tobytes()) for v in values]


class HexIndex:
    """A HexColumn's values -> the first position holding each (`add` keeps the first).

    Held as the values' first 8 bytes, each with its position, in a U64Table (16 bytes a value), whose
    additions are merged once they outgrow `recent_max`. A found position is checked against the column,
    so two values sharing their first 8 bytes are told apart (the later one is kept in a dict by its
    string, as is a value that is no hex string)."""

    def __init__(self, column: HexColumn, recent_max: int = 1 << 12) -> None:
        self.column = column
        self.recent_max = recent_max
        self._table = U64Table()
        self._other: dict[str, int] = {}

    def _prefix(self, value: str) -> int | None:
        raw = hex_bytes(value, self.column.width)
        return None if raw is None else int.from_bytes(raw[:8], "big")

    def _held(self, prefix: int) -> int | None:
        row = self._table.find(prefix)
        return None if row is None else row[0]

    def get(self, value: str) -> int | None:
        prefix = self._prefix(value)
        if prefix is not None:
            pos = self._held(prefix)
            if pos is not None and self.column[pos] == value:
                return pos
        return self._other.get(value) if self._other else None

    def __contains__(self, value: str) -> bool:
        return self.get(value) is not None

    def add(self, value: str, pos: int) -> None:
        """`value` is at `pos`, unless it is held already (the first position is kept)."""
        prefix = self._prefix(value)
        if prefix is None:
            self._other.setdefault(value, pos)
            return
        held = self._held(prefix)
        if held is None:
            self._table.put(prefix, (pos,))
            if self._table.n_new > self.recent_max:
                self._table.merge()
        elif self.column[held] != value:  # another value with the same first 8 bytes
            self._other.setdefault(value, pos)

    def build(self, positions: np.ndarray | None = None) -> None:
        """Every value of the column (or of these positions, ascending), replacing what was held."""
        col = self.column
        pos = np.arange(len(col), dtype=np.int64) if positions is None else np.asarray(positions, dtype=np.int64)
        self._other = {}
        if col._other:  # values that are no hex string: by their string
            odd = np.fromiter((p in col._other for p in pos.tolist()), dtype=bool, count=pos.size)
            for p in pos[odd].tolist():
                self._other.setdefault(col._other[p], p)
            pos = pos[~odd]
        keys = col.prefixes()[pos]
        order = np.argsort(keys, kind="stable")  # equal prefixes in position order: the first one first
        keys, pos = keys[order], pos[order]
        first = np.ones(keys.size, dtype=bool)
        first[1:] = keys[1:] != keys[:-1]
        for i in np.flatnonzero(~first).tolist():  # a repeated prefix: the same value (kept once) or another
            value = col[int(pos[i])]
            j = i - 1
            while not first[j]:
                j -= 1
            if value != col[int(pos[j])]:
                self._other.setdefault(value, int(pos[i]))
        self._table.load(keys[first], pos[first])
