"""Syndicated-copy detection: canonical URL, exact hash, then shingle containment over a rolling window.

Layers, cheapest first:

1. URL: documents whose :func:`pipeline.urls.canonicalize_url` is equal (:func:`dedup_documents`);
2. exact: equal :func:`content_hash` (token sequence of :func:`normalize_text`: casefold, NFKC, HTML
   entities, punctuation and whitespace collapsed);
3. near: word ``shingle_size``-shingles of a normalised token stream. Tokens fold wire-style variants
   (``mln``/``million``, ``pct``/``%``/``per cent``, ``U.S.``/``United States``, ``said``/``stated``/
   ``told reporters``, ``Mar.``/``March``...), and shingles never cross a line break, a sentence end,
   a " - " or a "|", so a reflowed copy, swapped paragraphs, a dropped sentence or dateline and
   inserted boilerplate lines leave the other shingles intact. Each text keeps a ``num_perm`` MinHash
   (LSH over ``bands`` bands) and a consistent sample of its shingle hashes (``hash % sample_mod == 0``)
   that is the evidence for verification and what the rolling index persists.

Verification compares the *informative* sampled shingles of two texts. Template shingles are not
evidence: those used by ``template_clusters`` distinct clusters (outlet templates such as "Reuters
content is the intellectual property of Reuters.", newsletter promos, stock phrases), or by
``source_template_clusters`` clusters of one ``source``. Counting clusters rather than documents keeps a
wire story that fifty outlets copied informative. Guards against false merges (fields of
``DedupSettings``, plus the internal :class:`DedupTuning`):

* texts under ``min_words`` tokens (or with fewer than ``min_evidence`` informative sampled shingles)
  are only exact-matched;
* the shorter text must be contained in the longer at ``min_containment`` (two reports of one event,
  or a follow-up that reuses background paragraphs, share some sentences but not most);
* when it covers less than ``full_coverage`` of the longer (truncated re-post, but also a digest, live
  blog or follow-up), the shared text must be the *lead* of the longer (start within
  ``max_lead_skip``) and the shorter must be at least ``min_length_ratio`` of it: a truncated copy is a
  prefix, whereas a story inside a digest, or the background a follow-up reuses, sits further down;
* a text holding two clusters' stories at disjoint places is a multi-story page and joins neither.

:class:`DedupIndex` applies this incrementally (each document joins the cluster of its best accepted
indexed match, cluster ids never change) over a persisted rolling window. :func:`dedup_documents`
(``python -m pipeline.dedup``, ``newsingest dedup --jsonl``) applies it to a whole batch at once:
candidate pairs and their statistics are computed with numpy joins, the batch is clustered once to
learn its template shingles and again with them, and clusters are the connected documents (so two
partial copies join through the full one even when they arrive first).

Fingerprints are computed for many texts at once on their UTF-8 bytes with numpy (no Python loop per
token or shingle). Hashes derive from fixed constants (splitmix64), never from Python's per-process
``hash()``, so fingerprints are identical across processes and machines. Importing this module costs
numpy and the standard library only; pyarrow is imported by ``to_arrow``/``from_arrow``.
"""

from __future__ import annotations

import array
import hashlib
import html
import itertools
import json
import os
import sys
import tempfile
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from pipeline.columns import HexColumn, HexIndex
from pipeline.columns import utc_us as _utc_us

if TYPE_CHECKING:  # pragma: no cover
    import pyarrow as pa

    from pipeline.settings import DedupSettings

__all__ = [
    "DedupIndex",
    "DedupMatch",
    "DedupTuning",
    "Fingerprint",
    "content_hash",
    "dedup_documents",
    "fingerprint",
    "fingerprints",
    "normalize_text",
]

# --------------------------------------------------------------------------------------------------
# settings


@dataclass(frozen=True, slots=True)
class _DefaultSettings:
    """The defaults of ``pipeline.settings.DedupSettings`` (importing pydantic costs 0.1-0.3 s at start-up,
    a tenth of a ``newsingest dedup --jsonl`` run on 4,000 documents). A test checks that both agree;
    the meaning of each field is documented there."""

    window_days: int = 14
    shingle_size: int = 5
    num_perm: int = 128
    bands: int = 32
    min_containment: float = 0.6
    min_words: int = 30
    sample_mod: int = 2
    template_clusters: int = 8
    source_template_clusters: int = 2
    full_coverage: float = 0.8
    min_length_ratio: float = 0.2
    max_lead_skip: float = 0.2
    threads: int = 0


def plain_settings(settings: Any) -> Any:
    """A `DedupSettings`'s values as the plain dataclass `_DefaultSettings` (None stays None): what a pool
    worker is given, which then needs no pydantic to read it (~0.08 s of each worker's start)."""
    if settings is None or isinstance(settings, _DefaultSettings):
        return settings
    return _DefaultSettings(**{name: getattr(settings, name) for name in _DefaultSettings.__dataclass_fields__})


@dataclass(frozen=True, slots=True)
class DedupTuning:
    """Internal knobs of the verifier and the index, below what a config should need to touch."""

    min_evidence: int = 6
    """fewer informative sampled shingles in the shorter text than this: exact matching only."""
    composite_share: float = 0.15
    """a text where each of two clusters covers this share is a multi-story page."""
    posting_cap: int = 6
    """members kept per sampled shingle in the candidate index (clusters are reached via any member)."""
    sketch_bits: int = 22
    """log2 of the width of the index's count-min sketch of clusters per shingle (2 rows of int32)."""
    recent_postings: int = 1 << 16
    """keys the index's postings keep in a Python dict before merging them into a sorted numpy tier
    (memory against merge work; the results do not depend on it)."""
    spilled_postings: int = 1 << 18
    """postings an index with a spill directory adds (8 bytes each, in memory) before it writes them into
    the file that holds the rest (memory against rewriting the file); its postings' dict holds at most a
    32nd of this many keys (``recent_postings`` otherwise)."""
    prefetch_docs: int = 512
    """documents whose spilled postings `DedupIndex.add_fingerprints` reads in one pass over the file."""
    posted_keys: int = 64
    """sampled shingles of a document put in the candidate index: its smallest ``posted_keys`` (0: all).
    A lookup still uses every sampled shingle of the new text, and verification the full samples, so a
    copy is still found wherever it shares ``posted_keys`` x its share of the indexed text: 64 keeps a
    lead copy of a fifth of a story ~12 shared keys, ~8 when the copy is edited (2 make a candidate). It
    bounds the postings at 512 bytes a document (they were 8 bytes a sampled key, ~1.8 KB for a 450-word
    story, most of the memory a big commit grows by); the dev set's clusters are the same at 32 to 96 and
    with all keys, and so are the lead copies of 20 to 50% of 400 stories found."""


# --------------------------------------------------------------------------------------------------
# stable constants

_M64 = (1 << 64) - 1


def _splitmix64(seed: int, n: int) -> np.ndarray:
    out = np.empty(n, dtype=np.uint64)
    x = seed & _M64
    for i in range(n):
        x = (x + 0x9E3779B97F4A7C15) & _M64
        z = x
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
        out[i] = z ^ (z >> 31)
    return out


_CHAR_COEF = _splitmix64(0x6E657773, 32) | np.uint64(1)  # per position inside a token
_SHINGLE_COEF = _splitmix64(0x73686E67, 64) | np.uint64(1)  # per position inside a shingle
_BAND_COEF = _splitmix64(0x62616E64, 64) | np.uint64(1)
_MH_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}
_U64 = np.uint64


def _minhash_coefs(num_perm: int) -> tuple[np.ndarray, np.ndarray]:
    """multiply-add-shift hash functions h(x) = (a*x + b) mod 2**32 >> 0 over 32-bit x, a odd."""
    got = _MH_CACHE.get(num_perm)
    if got is None:
        raw = _splitmix64(0x6D696E68 + num_perm, 2 * num_perm)
        a = ((raw[:num_perm] >> _U64(32)) | _U64(1)).astype(np.uint32)
        b = (raw[num_perm:] >> _U64(32)).astype(np.uint32)
        got = _MH_CACHE[num_perm] = (a.reshape(-1, 1), b.reshape(-1, 1))
    return got


def _fmix64(x: np.ndarray) -> np.ndarray:
    """murmur3 finaliser, in place on a uint64 array."""
    x ^= x >> _U64(33)
    x *= _U64(0xFF51AFD7ED558CCD)
    x ^= x >> _U64(33)
    x *= _U64(0xC4CEB9FE1A85EC53)
    x ^= x >> _U64(33)
    return x


# --------------------------------------------------------------------------------------------------
# normalisation (on UTF-8 bytes: numpy does the character classes, no regex pass over the text)

def _fold_str(text: str) -> str:
    """Entities decoded, NFKC and casefold for non-ASCII text (ASCII is lowercased later, on bytes)."""
    if "&" in text:
        text = html.unescape(text)
    if not text.isascii():
        if not unicodedata.is_normalized("NFKC", text):
            text = unicodedata.normalize("NFKC", text)
        text = text.casefold()
    return text


def _fold_many(texts: Iterable[str | None]) -> bytes:
    """Folded UTF-8 bytes of several texts, separated by NUL (a NUL inside a text becomes a space)."""
    parts = [_fold_str(t.replace("\x00", " ") if "\x00" in t else t) if t else "" for t in texts]
    return "\x00".join(parts).encode("utf-8", "replace").lower()


# byte classes: 0 separator, 1 word, 2 one-byte symbol token ("%"), 3 document separator (NUL)
_BYTE_CLASS = np.zeros(256, dtype=np.uint8)
for _c in b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ":
    _BYTE_CLASS[_c] = 1
_BYTE_CLASS[0x80:] = 1  # non-ASCII letters; punctuation and symbols are fixed up below
_BYTE_CLASS[ord("%")] = 2
_BYTE_CLASS[0] = 3
_BYTE_CLASS_TABLE = _BYTE_CLASS.tobytes()  # for bytes.translate


def _scan(arr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Byte classes and token breaks inside word runs (symbols, CJK characters) for folded UTF-8 bytes."""
    cls = np.frombuffer(bytearray(arr.tobytes().translate(_BYTE_CLASS_TABLE)), dtype=np.uint8)
    brk = cls == 2
    if brk.any():
        brk[1:] |= brk[:-1]
    n = arr.size
    hi = np.flatnonzero(arr >= 0xC2)
    if hi.size:
        lead = arr[hi]
        nxt = arr[np.minimum(hi + 1, n - 1)]
        seq = np.where(lead < 0xE0, 2, np.where(lead < 0xF0, 3, 4))
        punct = (
            ((lead == 0xC2) & (nxt >= 0xA0))  # U+00A0-00BF
            | ((lead == 0xC3) & ((nxt == 0x97) | (nxt == 0xB7)))  # multiplication, division signs
            | ((lead == 0xE2) & (nxt < 0x82))  # general punctuation U+2000-207F
            | ((lead == 0xE3) & (nxt == 0x80))  # CJK punctuation U+3000-303F
            | ((lead == 0xEF) & ((nxt == 0xB8) | (nxt == 0xB9) | (nxt == 0xBB) | (nxt == 0xBF)))
            | ((lead == 0xF0) & (nxt == 0x9F))  # emoji and pictographs
        )
        if punct.any():
            p, ln = hi[punct], seq[punct]
            for j in range(4):
                q = p[ln > j] + j
                cls[q[q < n]] = 0
        cjk = (lead >= 0xE3) & (lead <= 0xED) & ~punct  # kana, CJK ideographs, Hangul: one token each
        if cjk.any():
            p = hi[cjk]
            brk[p] = True
            q = p + 3
            brk[q[q < n]] = True
    return cls, brk


def _exact_bytes(arr: np.ndarray, cls: np.ndarray) -> bytes:
    """Word characters with every run of anything else collapsed to one space (NUL separators kept)."""
    word = cls == 1
    sep = cls == 3
    prev = np.zeros(arr.size, dtype=bool)
    prev[1:] = word[:-1]
    keep = word | sep | (prev & ~sep)
    out = arr[keep]
    kw = word[keep]
    out[~kw & (out != 0)] = 32
    if out.size:
        # no space before a separator or at the end
        last = np.ones(out.size, dtype=bool)
        last[:-1] = out[1:] == 0
        out = out[~((out == 32) & last)]
    return out.tobytes()


def normalize_text(text: str) -> str:
    """The exact layer's text: entities decoded, NFKC, casefolded, punctuation and whitespace collapsed."""
    arr = np.frombuffer(_fold_many([text]), dtype=np.uint8)
    cls, _ = _scan(arr)
    return _exact_bytes(arr, cls).decode("utf-8", "replace")


def content_hash(text: str) -> str:
    """128-bit hash (32 hex digits) of the token sequence of :func:`normalize_text`.

    Equal for texts that differ only in case, Unicode form, HTML entities, punctuation or spacing.
    """
    arr = np.frombuffer(_fold_many([text]), dtype=np.uint8)
    cls, brk = _scan(arr)
    tok, tok_start = _token_hashes(arr, cls, brk)
    return _content_hashes(tok, np.zeros(tok.size, dtype=np.int64), cls[tok_start] == 1, 1)[0]


# --------------------------------------------------------------------------------------------------
# vectorised tokens and fingerprints


_LOW_BYTES = np.array([(1 << (8 * i)) - 1 for i in range(8)] + [_M64], dtype=np.uint64)


def _token_hashes(arr: np.ndarray, cls: np.ndarray, brk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint64 hash of every token and the byte offset where it starts.

    A token is hashed from its length, its first 16 bytes and its last 8 bytes, read as little-endian
    words through an unaligned uint64 view of the byte buffer (three gathers per token, no per-byte work).
    """
    word = (cls == 1) | (cls == 2)
    n = arr.size
    nxt = np.zeros(n, dtype=bool)
    nxt[:-1] = word[1:]
    nxt[:-1] &= ~brk[1:]
    ends = np.flatnonzero(word & ~nxt) + 1
    if ends.size == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    prev = np.zeros(n, dtype=bool)
    prev[1:] = word[:-1]
    starts = np.flatnonzero(word & (~prev | brk))
    length = ends - starts
    padded = np.zeros(n + 24, dtype=np.uint8)
    padded[8 : n + 8] = arr
    view = np.ndarray(shape=(n + 17,), dtype="<u8", buffer=padded.data, offset=0, strides=(1,))
    h = view[starts + 8]
    h &= _LOW_BYTES[np.minimum(length, 8)]
    h *= _CHAR_COEF[0]
    h += length.astype(np.uint64) * _CHAR_COEF[3]
    # the second 8 bytes and the last 8 bytes are zero for most tokens: gathered for the long ones only
    at = np.flatnonzero(length > 8)
    if at.size:
        la = length[at]
        w1 = view[starts[at] + 16] & _LOW_BYTES[np.minimum(la - 8, 8)]
        w1 *= _CHAR_COEF[1]
        at16 = la > 16
        w1[at16] += view[ends[at[at16]]] * _CHAR_COEF[2]
        h[at] += w1
    return _fmix64(h), starts


def _word_hashes(words: str) -> np.ndarray:
    arr = np.frombuffer(words.encode("ascii"), dtype=np.uint8)
    cls, brk = _scan(arr)
    return _token_hashes(arr, cls, brk)[0]


# wire-style abbreviations and their spelled-out forms (first word is the canonical token)
_SYNONYMS = [
    "said stated",
    "dollar dollars dlr dlrs usd",
    "million mln m mn",
    "billion bln bn",
    "percent pct %",
    "cent cents ct cts",
    "share shr",
    "shares shrs",
    "quarter qtr",
    "quarters qtrs",
    "month mth",
    "months mths",
    "year yr",
    "years yrs",
    "inc incorporated",
    "corp corporation",
    "ltd limited",
    "january jan",
    "february feb",
    "march mar",
    "april apr",
    "june jun",
    "july jul",
    "august aug",
    "september sep sept",
    "october oct",
    "november nov",
    "december dec",
]
_BIGRAMS = [
    ("told reporters", "said"),
    ("per cent", "percent"),
    ("united states", "us"),
    ("u s", "us"),  # "U.S." is tokenised as "u s"
    ("u k", "uk"),
]
_BIGRAM_MUL = _U64(0x9FB21C651E98DF25)


class _SmallMap:
    """uint64 -> uint64 for a few dozen keys: one gather per lookup (a collision-free slot per key)."""

    def __init__(self, keys: np.ndarray, values: np.ndarray):
        for bits in range(8, 17):
            for shift in range(0, 64 - bits + 1, 4):
                slots = (keys >> _U64(shift)) & _U64((1 << bits) - 1)
                if np.unique(slots).size == keys.size:
                    break
            else:
                continue
            break
        else:  # pragma: no cover - 2**16 slots always separate a few dozen random keys
            raise RuntimeError("no collision-free slot function")
        self.shift, self.mask = _U64(shift), _U64((1 << bits) - 1)
        self.keys = np.zeros(1 << bits, dtype=np.uint64)
        self.values = np.zeros(1 << bits, dtype=np.uint64)
        self.keys[slots.astype(np.int64)] = keys
        self.values[slots.astype(np.int64)] = values
        if keys.size and (self.keys == 0).any() and (keys != 0).all():
            self.keys[self.keys == 0] = ~keys[0]  # an empty slot never matches a key

    def lookup(self, h: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        slot = ((h >> self.shift) & self.mask).astype(np.intp)
        return slot, self.keys[slot] == h


_tables: tuple[_SmallMap, _SmallMap] | None = None


def _fold_tables() -> tuple[_SmallMap, _SmallMap]:
    global _tables
    if _tables is None:
        src, dst = [], []
        for line in _SYNONYMS:
            h = _word_hashes(line)
            src.append(h[1:])
            dst.append(np.full(h.size - 1, h[0], dtype=np.uint64))
        syn = _SmallMap(np.concatenate(src), np.concatenate(dst))
        bk = np.array([_bigram_key(_word_hashes(a)) for a, _ in _BIGRAMS], dtype=np.uint64)
        bv = np.array([_word_hashes(b)[0] for _, b in _BIGRAMS], dtype=np.uint64)
        _tables = (syn, _SmallMap(bk, bv))
    return _tables


def _bigram_key(h: np.ndarray) -> np.uint64:
    return (h[:1] * _BIGRAM_MUL + h[1:2])[0]


def _fold_tokens(
    tok: np.ndarray, tok_doc: np.ndarray, seg_start: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-word phrases to one token (inside a sentence), then abbreviations to their canonical word."""
    syn, big = _fold_tables()
    if tok.size >= 2:
        keys = tok[:-1] * _BIGRAM_MUL
        keys += tok[1:]
        slot, hit = big.lookup(keys)
        hit &= ~seg_start[1:]
        if hit.any():
            at = np.flatnonzero(hit)
            at = at[np.append(True, at[1:] != at[:-1] + 1)]  # "u s s": fold the first pair only
            tok[at] = big.values[slot[at]]
            keep = np.ones(tok.size, dtype=bool)
            keep[at + 1] = False
            tok, tok_doc, seg_start = tok[keep], tok_doc[keep], seg_start[keep]
    slot, hit = syn.lookup(tok)
    tok[hit] = syn.values[slot[hit]]
    return tok, tok_doc, seg_start


_BOUNDARY_BYTE = np.zeros(256, dtype=bool)
for _c in b"\n\r\x00|.!?-\xe2":
    _BOUNDARY_BYTE[_c] = True
_BOUNDARY_TABLE = _BOUNDARY_BYTE.tobytes()  # for bytes.translate
_WS_BYTE = np.zeros(256, dtype=bool)
for _c in b" \n\r\t\x00":
    _WS_BYTE[_c] = True


def _segment_starts(arr: np.ndarray, tok_start: np.ndarray) -> np.ndarray:
    """Tokens that open a segment: after a line break, a sentence end, a " - " dash, a "|" or a document start.

    Shingles do not cross segments, so a copy reflowed onto one line, with paragraphs swapped or
    sentences dropped, a dateline removed or boilerplate lines inserted keeps the shingles of its text.
    Every ". " counts as a sentence end, abbreviations included ("U.S. economy"): a simple rule that
    verbatim copies share, which matters more here than linguistic accuracy.
    """
    n = arr.size
    p = np.flatnonzero(np.frombuffer(arr.tobytes().translate(_BOUNDARY_TABLE), dtype=np.bool_))
    c = arr[p]
    padded = np.concatenate([arr, np.zeros(2, dtype=np.uint8)])
    nxt, nxt2 = padded[p + 1], padded[p + 2]
    prv = arr[np.maximum(p - 1, 0)]
    ws_next = _WS_BYTE[nxt] | (p + 1 >= n)
    closing = (((nxt == 34) | (nxt == 39) | (nxt == 41)) & _WS_BYTE[nxt2]) | (nxt == 0xE2)  # '."' or '.”'
    term = ((c == 46) | (c == 33) | (c == 63)) & (ws_next | closing)
    en_em = (c == 0xE2) & (nxt == 0x80) & ((nxt2 == 0x93) | (nxt2 == 0x94))
    dash = (((c == 45) & ws_next) | en_em) & (prv == 32) & (p > 0)
    hard = (c == 10) | (c == 13) | (c == 0) | (c == 124)
    bnd = p[hard | term | dash]
    start = np.zeros(tok_start.size, dtype=bool)
    if tok_start.size:
        start[0] = True
        t = np.searchsorted(tok_start, bnd, side="right")
        start[t[t < tok_start.size]] = True
    return start


def _shingles(tok: np.ndarray, tok_doc: np.ndarray, seg_start: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hashes of the k-token windows inside each segment (a shorter segment is one shingle), in text order."""
    n = tok.size
    if n == 0:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    firsts = np.flatnonzero(seg_start)
    ends = np.append(firsts[1:], n)
    seg_end = np.repeat(ends, ends - firsts)
    width = np.minimum(seg_end - np.arange(n), k)
    valid = (width == k) | (seg_start & (width < k))
    padded = np.concatenate([tok, np.zeros(k, dtype=np.uint64)])
    # full windows for every token, then the few shorter ones (a segment under k tokens) redone
    sh = tok * _SHINGLE_COEF[0]
    tmp = np.empty(n, dtype=np.uint64)
    for j in range(1, k):
        np.multiply(padded[j : j + n], _SHINGLE_COEF[j], out=tmp)
        sh += tmp
    del tmp
    sh += _U64(k * int(_SHINGLE_COEF[k]) & _M64)
    short = np.flatnonzero(valid & (width < k))
    if short.size:
        w = width[short]
        s = tok[short] * _SHINGLE_COEF[0]
        for j in range(1, k):
            s += padded[short + j] * (_SHINGLE_COEF[j] * (w > j))
        s += w.astype(np.uint64) * _SHINGLE_COEF[k]
        sh[short] = s
    return _fmix64(sh[valid]), tok_doc[valid]


class Fingerprint(NamedTuple):
    """What the index keeps about one text."""

    content_hash: str
    n_tokens: int
    minhash: np.ndarray  # uint32[num_perm]; all 0xFFFFFFFF when the text has no shingle
    sample: np.ndarray  # uint64: distinct sampled shingle hashes, in order of first occurrence

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        # as bytes: fingerprints cross process pipes and page spools, and numpy arrays pickle ten times slower
        return _fingerprint_from_bytes, (self.content_hash, self.n_tokens,
                                         np.asarray(self.minhash, np.uint32).tobytes(),
                                         np.asarray(self.sample, np.uint64).tobytes())


def _fingerprint_from_bytes(content_hash: str, n_tokens: int, minhash: bytes, sample: bytes) -> Fingerprint:
    return Fingerprint(content_hash, n_tokens, np.frombuffer(minhash, np.uint32).copy(),
                       np.frombuffer(sample, np.uint64).copy())


class _Flat(NamedTuple):
    """Fingerprints of a batch as flat arrays (samples in text order, repeats not yet removed)."""

    hashes: list[str]
    n_tokens: np.ndarray
    minhash: np.ndarray  # (n, num_perm) uint32
    keys: np.ndarray  # sampled shingle hashes, text by text, in order of occurrence
    doc: np.ndarray  # int32: the text of each key


def _fingerprint_arrays(
    texts: Sequence[str | None], settings: Any, sample_mod: int, minhash: bool = True, jit: Any = None
) -> _Flat:
    """Fingerprints of a batch as flat arrays. ``jit`` (:func:`_jit_kernels`, batches without MinHash only):
    the compiled kernel computes everything after the byte classes, with the same results."""
    k, num_perm = int(settings.shingle_size), int(settings.num_perm)
    if not 1 <= k < _SHINGLE_COEF.size:
        raise ValueError(f"shingle_size must be between 1 and {_SHINGLE_COEF.size - 1}")
    n_docs = len(texts)
    arr = np.frombuffer(_fold_many(texts), dtype=np.uint8)
    cls, brk = _scan(arr)
    if jit is not None and not minhash:
        syn, big = _fold_tables()
        exact, n_tok, keys, doc = jit.fingerprint_keys(
            arr, cls, brk, n_docs, k, max(sample_mod, 1), _CHAR_COEF, _SHINGLE_COEF, _EXACT_COEF, _BIGRAM_MUL,
            big.keys, big.values, big.shift, big.mask, syn.keys, syn.values, syn.shift, syn.mask,
            _BOUNDARY_BYTE, _WS_BYTE,
        )  # fmt: skip
        hashes = [f"{a:016x}{b:016x}" for a, b in exact.tolist()]
        return _Flat(hashes, n_tok, np.zeros((0, num_perm), dtype=np.uint32), keys, doc)
    tok, tok_start = _token_hashes(arr, cls, brk)
    tok_doc = _owner(np.flatnonzero(cls == 3), tok_start)
    hashes = _content_hashes(tok, tok_doc, cls[tok_start] == 1, n_docs)
    seg_start = _segment_starts(arr, tok_start)
    tok, tok_doc, seg_start = _fold_tokens(tok, tok_doc, seg_start)
    n_tok = np.bincount(tok_doc, minlength=n_docs)
    sh, sh_doc = _shingles(tok, tok_doc, seg_start, k)
    if minhash:
        mh = _minhash(sh, np.searchsorted(sh_doc, np.arange(n_docs + 1)), n_docs, num_perm)
    else:  # the batch engine joins the samples directly and has no use for LSH
        mh = np.zeros((0, num_perm), dtype=np.uint32)
    if sample_mod > 1:
        sel = (sh % _U64(sample_mod)) == 0
        sh, sh_doc = sh[sel], sh_doc[sel]
    return _Flat(hashes, n_tok, mh, sh, sh_doc.astype(np.int32))


def _fingerprint_chunks(
    texts: Sequence[str], settings: Any, sample_mod: int, minhash: bool, budget: int = 1 << 19, jit: Any = None,
    threads: int = 1,
) -> _Flat:
    """:func:`_fingerprint_arrays` over slices of about ``budget`` characters (bounds the temporary arrays).

    The slices' keys and documents are copied as they come, in slice order, into arrays that grow when
    needed (sized from the text length first), so the batch holds them once rather than once per slice
    plus once concatenated. With ``threads`` > 1, that many slices are fingerprinted at a time in threads:
    the compiled kernel and numpy's big operations release the GIL, so one slice's folding (Python) runs
    beside another's hashing. The result does not depend on the number of threads.
    """
    slices = _slices(texts, budget)
    if len(slices) <= 1:
        return _fingerprint_arrays(texts, settings, sample_mod, minhash, jit)

    def part(bounds: tuple[int, int]) -> _Flat:
        return _fingerprint_arrays(texts[bounds[0] : bounds[1]], settings, sample_mod, minhash, jit)

    hashes: list[str] = []
    n_tokens: list[np.ndarray] = []
    minhashes: list[np.ndarray] = []
    keys = np.zeros(0, dtype=np.uint64)
    doc = np.zeros(0, dtype=np.int32)
    m = 0
    estimate = sum(map(len, texts)) // max(2, 8 * sample_mod) + 1024  # ~1 sampled key per 19 characters
    for (lo, _), p in zip(slices, _in_order(part, slices, threads), strict=True):
        end = m + p.keys.size
        if end > keys.size:
            cap = max(end, keys.size * 3 // 2, estimate)
            keys, doc = _grown(keys, m, cap), _grown(doc, m, cap)
        keys[m:end] = p.keys
        np.add(p.doc, np.int32(lo), out=doc[m:end])
        m = end
        hashes += p.hashes
        n_tokens.append(p.n_tokens)
        minhashes.append(p.minhash)
    return _Flat(hashes, np.concatenate(n_tokens), np.concatenate(minhashes), keys[:m], doc[:m])


def _slices(texts: Sequence[str], budget: int) -> list[tuple[int, int]]:
    """(lo, hi) bounds of consecutive texts of about ``budget`` characters together (at least one text each)."""
    out = []
    lo, size = 0, 0
    for hi, t in enumerate(texts, 1):
        size += len(t)
        if size >= budget or hi == len(texts):
            out.append((lo, hi))
            lo, size = hi, 0
    return out


def _in_order(fn: Any, items: Sequence[Any], threads: int) -> Iterator[Any]:
    """``map(fn, items)``, computed by up to ``threads`` threads with at most twice as many results waiting
    (memory stays bounded when the consumer is slower)."""
    if threads <= 1 or len(items) <= 1:
        yield from map(fn, items)
        return
    from collections import deque
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=threads, thread_name_prefix="dedup") as pool:
        pending: deque = deque()
        todo = iter(items)
        try:
            for item in todo:
                pending.append(pool.submit(fn, item))
                if len(pending) >= 2 * threads:
                    yield pending.popleft().result()
            while pending:
                yield pending.popleft().result()
        finally:
            for f in pending:  # the consumer stopped early, or a slice failed: drop the queued rest
                f.cancel()


def batch_threads(settings: Any) -> int:
    """Threads for a batch (its fingerprinting and its kernels on ranges): ``settings.threads``, or when 0,
    one per core this process may run on, at most 8 (beyond that the stages left single-threaded dominate)."""
    import os

    wanted = int(getattr(settings, "threads", 0) or 0)
    if wanted > 0:
        return wanted
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


_PARALLEL_MIN = 1 << 20
"""Elements below which a split over threads costs more than it saves."""


def _split(n: int, threads: int) -> list[tuple[int, int]]:
    """[0, n) cut into up to ``threads`` contiguous (lo, hi) ranges; one when n is small."""
    parts = max(1, min(threads, n // _PARALLEL_MIN))
    cuts = [n * k // parts for k in range(parts + 1)]
    return list(zip(cuts[:-1], cuts[1:], strict=True))


def _each_range(fn: Any, ranges: Sequence[tuple[int, int]]) -> list[Any]:
    """``[fn(lo, hi) for lo, hi in ranges]``, one thread per range (compiled kernels and numpy's big
    operations release the GIL)."""
    return list(_in_order(lambda r: fn(*r), ranges, len(ranges)))


def _empty(size: int, dtype: Any, threads: int) -> np.ndarray:
    """``np.empty(size, dtype)`` with its pages touched by ``threads`` threads at once. A big array's first
    touch is the kernel zeroing fresh pages (on a VM, where the host backs them on demand, ~2.5 s per GB
    here): the threads share that cost instead of the single-threaded loop that fills the array."""
    out = np.empty(size, dtype=dtype)
    ranges = _split(size, threads)
    if len(ranges) > 1:
        _each_range(lambda lo, hi: out[lo:hi].fill(0), ranges)
    return out


def _grown(a: np.ndarray, used: int, cap: int) -> np.ndarray:
    """A new array of ``cap`` elements starting with the ``used`` first ones of ``a`` (the rest untouched)."""
    out = np.empty(cap, dtype=a.dtype)
    out[:used] = a[:used]
    return out


def _first_occurrences(keys: np.ndarray, doc: np.ndarray) -> np.ndarray:
    """Mask of the first occurrence of each (doc, key) (a sentence can repeat inside a text)."""
    code = _pair_code(doc, keys)
    order = np.argsort(code, kind="stable")
    sc = code[order]
    keep = np.ones(code.size, dtype=bool)
    keep[order[1:][sc[1:] == sc[:-1]]] = False
    return keep


def fingerprints(texts: Sequence[str], settings: DedupSettings | None = None, *, sample_mod: int | None = None) -> list[Fingerprint]:
    """Fingerprints of many texts in one vectorised pass (same result as :func:`fingerprint` per text)."""
    st = settings if settings is not None else _DefaultSettings()
    mod = int(sample_mod if sample_mod is not None else st.sample_mod)
    n_docs = len(texts)
    if n_docs == 0:
        return []
    f = _fingerprint_chunks(texts, st, mod, minhash=True)
    keep = _first_occurrences(f.keys, f.doc)
    keys, doc = f.keys[keep], f.doc[keep]
    sb = np.searchsorted(doc, np.arange(n_docs + 1))
    n_tok = f.n_tokens.tolist()
    return [Fingerprint(f.hashes[i], n_tok[i], f.minhash[i], keys[sb[i] : sb[i + 1]]) for i in range(n_docs)]


def _owner(bounds: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Index of the range (between sorted ``bounds``) holding each sorted position."""
    owner = np.zeros(positions.size, dtype=np.int64)
    cut = np.searchsorted(positions, bounds)
    np.add.at(owner, cut[cut < positions.size], 1)
    return np.cumsum(owner)


_EXACT_COEF = _splitmix64(0x65786163, 4) | np.uint64(1)


def _content_hashes(tok: np.ndarray, tok_doc: np.ndarray, word: np.ndarray, n_docs: int) -> list[str]:
    """128-bit hash (hex) of each text's sequence of word tokens, i.e. of its :func:`normalize_text`."""
    h, d = tok[word], tok_doc[word]
    starts = np.searchsorted(d, np.arange(n_docs))
    pos = (np.arange(h.size) - starts[d]).astype(np.uint64)
    out = np.zeros((n_docs, 2), dtype=np.uint64)
    if h.size:
        nonempty = np.flatnonzero(np.bincount(d, minlength=n_docs))
        for col in range(2):
            x = h * _EXACT_COEF[2 * col]
            x += pos * _EXACT_COEF[2 * col + 1]
            out[nonempty, col] = np.add.reduceat(_fmix64(x), starts[nonempty])
    return [f"{a:016x}{b:016x}" for a, b in out.tolist()]


def _minhash(sh: np.ndarray, bounds: np.ndarray, n_docs: int, num_perm: int) -> np.ndarray:
    """min over each document's shingles of (a*x + b) mod 2**32, x = high 32 bits of the shingle hash.

    Laid out (num_perm, shingles) so that every ufunc call runs over long contiguous rows.
    """
    a, b = _minhash_coefs(num_perm)
    mh = np.full((n_docs, num_perm), 0xFFFFFFFF, dtype=np.uint32)
    x32 = (sh >> _U64(32)).astype(np.uint32)
    chunk = 16384
    buf = np.empty((num_perm, chunk), dtype=np.uint32)
    d0 = 0
    while d0 < n_docs:
        lo = int(bounds[d0])
        d1 = int(np.searchsorted(bounds, lo + chunk, side="right")) - 1
        d1 = min(max(d1, d0 + 1), n_docs)
        hi = int(bounds[d1])
        if hi > lo:
            xs = x32[lo:hi]
            bb = buf[:, : xs.size] if xs.size <= chunk else np.empty((num_perm, xs.size), dtype=np.uint32)
            np.multiply(a, xs, out=bb)
            np.add(bb, b, out=bb)
            nonempty = np.flatnonzero(bounds[d0 + 1 : d1 + 1] > bounds[d0:d1])
            mh[d0 + nonempty] = np.minimum.reduceat(bb, bounds[d0:d1][nonempty] - lo, axis=1).T
        d0 = d1
    return mh


def fingerprint(text: str, settings: DedupSettings | None = None, *, sample_mod: int | None = None) -> Fingerprint:
    """Fingerprint of one text."""
    return fingerprints([text], settings, sample_mod=sample_mod)[0]


# --------------------------------------------------------------------------------------------------
# the verdict, shared by the rolling index and the batch engine


def _judge(
    n_a: np.ndarray, n_b: np.ndarray, inter: np.ndarray, skip: np.ndarray, st: Any, tu: DedupTuning
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Vectorised verdicts for pairs of texts.

    ``n_a``/``n_b``: informative sampled shingles of each text, ``inter``: how many they share, ``skip``:
    share of the longer text's informative shingles that come before the first shared one.
    Returns (accepted, containment of the shorter, coverage of the longer).
    """
    n_short = np.minimum(n_a, n_b).astype(np.float64)
    n_long = np.maximum(n_a, n_b).astype(np.float64)
    c = inter / np.maximum(n_short, 1)
    cov = inter / np.maximum(n_long, 1)
    ok = (n_short >= tu.min_evidence) & (c >= float(st.min_containment))
    # the shorter covers only part of the longer: a truncated copy is its lead, not a digest item
    lead = (n_short >= float(st.min_length_ratio) * n_long) & (skip <= float(st.max_lead_skip))
    ok &= (cov >= float(st.full_coverage)) | lead
    return ok, c, cov


def _is_composite(parts: Sequence[tuple[Any, float, float]]) -> bool:
    """Does a longer text hold two different clusters' stories at different places (a digest, a live blog)?

    ``parts``: (cluster, first, last) where each story's shared text sits, as shares of the longer text.
    Two truncated copies of one story both sit at its start and overlap; digest items do not.
    """
    for a in range(len(parts)):
        ca, fa, la = parts[a]
        for b in range(a + 1, len(parts)):
            cb, fb, lb = parts[b]
            if ca != cb and min(la, lb) - max(fa, fb) < 0.5 * min(la - fa, lb - fb):
                return True
    return False


# --------------------------------------------------------------------------------------------------
# the rolling index


@dataclass(frozen=True, slots=True)
class DedupMatch:
    """Where :meth:`DedupIndex.add` put a document."""

    cluster_id: str
    """id of the first-seen document of the cluster (the document's own id when it starts one)."""
    duplicate_of: str | None = None
    """the indexed document it was matched to; None for the first of a cluster."""
    method: str | None = None
    """"exact" or "near" ("url" in :func:`dedup_documents`); None for the first of a cluster."""
    similarity: float | None = None
    """containment of the shorter text in the longer (1.0 for exact matches)."""


_DAY_US = 86_400_000_000


def _source_key(source: str | None) -> int:
    """Stable nonzero 63-bit key of a source name (0 = no source)."""
    if not source:
        return 0
    return int.from_bytes(hashlib.blake2b(source.encode("utf-8"), digest_size=8).digest(), "little") >> 1 | 1


def _source_keys(keys: np.ndarray, src: int) -> np.ndarray:
    return _fmix64(keys ^ _U64(src))


def _sketch_keys(keys: np.ndarray, src: int) -> np.ndarray:
    """What the sketch counts for a text's sampled `keys`: the keys, and with a source, its source's keys."""
    return np.concatenate([keys, _source_keys(keys, src)]) if src else keys


class _Sketch:
    """Count-min sketch (two rows) of how many clusters use each sampled shingle."""

    _SEEDS = (_U64(0x2545F4914F6CDD1D), _U64(0x9E6C63D0676A9A99))

    def __init__(self, bits: int):
        self.shift = _U64(64 - bits)
        self.rows = np.zeros((2, 1 << bits), dtype=np.int32)

    def _slots(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (
            ((keys * self._SEEDS[0]) >> self.shift).astype(np.intp),
            ((keys * self._SEEDS[1]) >> self.shift).astype(np.intp),
        )

    def add(self, keys: np.ndarray) -> None:
        if keys.size:
            self.add_slots(self._slots(keys))

    def add_slots(self, both: tuple[np.ndarray, np.ndarray]) -> None:
        """`add` of the keys whose `_slots` these are."""
        size = both[0].size
        if size:
            width = self.rows.shape[1]
            for row, slots in zip(self.rows, both, strict=True):
                if size * 64 > width:  # bulk (loading, pruning)
                    row += np.bincount(slots, minlength=width).astype(np.int32)
                    continue
                slots = np.sort(slots)  # one document's keys: nearby slots, and repeats side by side
                if (slots[1:] != slots[:-1]).all():
                    row[slots] += 1  # no slot twice: plain indexing adds the same (7x faster than add.at)
                else:
                    np.add.at(row, slots, 1)

    def add_texts(self, samples: Sequence[np.ndarray], srcs: Sequence[int]) -> None:
        """`add_slots(DedupIndex._sketch_slots(sample, src))` of each text, in one pass over both rows: the same
        counts (a slot hit by several keys counted that many times, as the texts one at a time count it)."""
        keys = np.concatenate([_sketch_keys(k, src) for k, src in zip(samples, srcs, strict=True)])
        if not keys.size:
            return
        s0, s1 = self._slots(keys)
        width = self.rows.shape[1]
        flat = np.concatenate([s0, s1 + width])  # both rows as one array of counters
        if 2 * width <= 1 << 32:  # (4M counters by default) sorted as 32-bit numbers: 11 against 19 ms for 400k
            flat = flat.astype(np.uint32)
        flat.sort()
        first = np.flatnonzero(np.concatenate(([True], flat[1:] != flat[:-1])))
        self.rows.reshape(-1)[flat[first]] += np.diff(np.append(first, flat.size)).astype(self.rows.dtype)

    def query_slots(self, both: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        s0, s1 = both
        return np.minimum(self.rows[0][s0], self.rows[1][s1])


def _runs_in(tier: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each key's entries start in the sorted ``tier`` and how many there are (0: absent). The end
    of a run is searched for only where the key is present: most sampled keys are in no other text."""
    lo = np.searchsorted(tier, keys, side="left")
    n = np.zeros(keys.size, dtype=np.int64)
    at = np.flatnonzero(lo < tier.size)
    at = at[tier[lo[at]] == keys[at]]
    if at.size:
        n[at] = np.searchsorted(tier, keys[at], side="right") - lo[at]
    return lo, n


_BUILD_BUCKET_BITS = 6  # a spilled build sorts 64 buckets of the window's postings, one at a time
_BUILD_DOCS = 4096  # documents whose postings (or sampled keys) a load gathers at a time
_COPY_TIER_BELOW = 1 << 20  # a sorted tier this small takes additions by a copy (np.insert), not in place
_MOVE_BLOCK = 1 << 18  # elements moved at a time (each block costs a few temporary arrays of its size)


def _insert_sorted(out: np.ndarray, n: int, at: np.ndarray, values: np.ndarray) -> None:
    """``out[:n + len(values)] = np.insert(out[:n], at, values)`` (``at`` sorted) in place, without a second
    copy of the array: its elements move back a block at a time, the last block first, each by the number
    of values inserted at or before it; then the values go into the gaps."""
    m = values.size
    if not m:
        return
    first = int(at[0])  # elements before the first insertion point stay where they are
    for hi in range(n, first, -_MOVE_BLOCK):
        lo = max(first, hi - _MOVE_BLOCK)
        pos = np.arange(lo, hi)
        dest = pos + np.searchsorted(at, pos, side="right")
        out[dest] = out[lo:hi]  # numpy copies the source first where the two overlap
    for lo in range(0, m, _MOVE_BLOCK):  # a block at a time: no temporary of every value's size
        hi = min(m, lo + _MOVE_BLOCK)
        out[at[lo:hi] + np.arange(lo, hi)] = values[lo:hi]


def _rank_in_runs(keys: np.ndarray) -> np.ndarray:
    """Each entry's rank among the entries of its key in sorted `keys` (0: the first of its run)."""
    pos = np.arange(keys.size)
    starts = np.ones(keys.size, dtype=bool)
    np.not_equal(keys[1:], keys[:-1], out=starts[1:])
    return pos - np.maximum.accumulate(np.where(starts, pos, 0))


# `_without_candidates` costs ~20-40 us a text and saves a candidate search (50-150 us) for each text alone:
# where fewer than this share of a batch's texts were alone (texts of common phrases, a batch of copies),
# the next `_ALONE_RETEST` batches go without it (a corpus of such texts ran 7% slower with the test each
# batch, ~1% with this)
_ALONE_WORTH = 0.25
_ALONE_RETEST = 7
# texts alone that start their cluster are inserted together (`DedupIndex._insert_lone`); tests compare both
_BATCH_LONE_INSERTS = True


def _held_before(keys: np.ndarray, lens: np.ndarray) -> np.ndarray:
    """For concatenated lists of keys (`lens` keys each, lists in order), how many keys of each list are also
    in an earlier list."""
    owner = np.repeat(np.arange(lens.size, dtype=np.uint64), lens)
    if keys.dtype.itemsize <= 4 and lens.size < 1 << 32:  # key and list in one word: one sort of one array
        code = np.sort((keys.astype(np.uint64) << _U64(32)) | owner)
        k, o = code >> _U64(32), code & _U64(0xFFFFFFFF)
    else:
        order = np.lexsort((owner, keys))
        k, o = keys[order], owner[order]
    starts = np.ones(k.size, dtype=bool)
    np.not_equal(k[1:], k[:-1], out=starts[1:])
    first = o[np.maximum.accumulate(np.where(starts, np.arange(k.size), 0))]  # the key's first list
    return np.bincount(o[first < o].astype(np.intp), minlength=lens.size)  # each time it occurs (as `lookup` counts)


def _posted(sample: np.ndarray, k: int) -> np.ndarray:
    """The keys of a document's sample that go into the postings: its `k` smallest (ties: the first in text
    order), in text order; all of them with `k` 0. Smallest by value is a uniform, consistent choice: a
    copy of a long text shares most of them, and a short excerpt of it its share of them."""
    if not k or sample.size <= k:
        return sample
    return sample[np.sort(np.argsort(sample, kind="stable")[:k])]


def _posted_mask(keys: np.ndarray, lens: np.ndarray, k: int) -> np.ndarray:
    """`_posted` of each document of concatenated samples (`lens` keys each), as a mask over `keys`."""
    doc = np.repeat(np.arange(lens.size), lens)
    order = np.lexsort((keys, doc))  # by document, then key; ties in text order
    starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
    rank = np.empty(keys.size, dtype=np.int64)
    rank[order] = np.arange(keys.size) - np.repeat(starts, lens)
    return rank < k


class _Postings:
    """key -> first ``cap`` slots holding it: a sorted numpy base (bulk-built) plus the recent additions.

    The additions are absorbed into the base (`absorb`) when they outgrow half of it, so loading a window
    and adding to it both cost O(entries) overall, with no Python object per indexed key in the base.
    The base holds one entry per (key, slot), sorted by key (slots in slot order within a key): 12 bytes
    an entry, 8 with 32-bit keys (`key_dtype`), since most sampled keys are held by one document (a separate
    array of distinct keys with offsets cost 24). The additions since the build live in two tiers: the latest in a dict (a key held
    by one slot maps to that slot, an int, by several to a list of them), at most ``recent_max`` keys,
    which is then merged into a sorted numpy tier of the same layout as the base. Python objects cost
    ~110 bytes per key, so the additions of a big window no longer cost most of a commit's memory; the
    slots a key is found with, and which additions the cap refuses, are the same as with one dict.

    With `spill_to` (a directory), the base lives in a file there (`_SortedFile`), and the additions are
    absorbed into it once they pass `spill_after` entries: the postings then cost the process the
    additions' bounded tiers, not 8 bytes for every entry of the window (most of what an index of 100,000
    documents grew by). Lookups read the file; `prefetch` reads it once for the keys of many documents.
    """

    def __init__(self, cap: int, recent_max: int = 1 << 16, key_dtype: Any = np.uint64,
                 spill_to: str | os.PathLike[str] | None = None, spill_after: int = 1 << 19):
        self.cap = cap
        self.recent_max = recent_max
        self.key_dtype = np.dtype(key_dtype)  # uint32: uint64 keys are held by their high 32 bits (see DedupIndex)
        self.spill_to = spill_to
        self.spill_after = spill_after
        self.disk: _SortedFile | None = None  # the base, when spilled (`keys`, `slots` are then empty)
        # the base's answers for prefetched keys: (keys, start, count, slots), as `_SortedFile.runs`
        self._pre: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None
        self.clear()

    def held_as(self, keys: np.ndarray) -> np.ndarray:
        """Keys as this index holds them. The high half of a hash: sampling chose keys by their low bits
        (``hash % sample_mod == 0``)."""
        if keys.dtype == self.key_dtype:
            return keys
        if self.key_dtype == np.uint32 and keys.dtype == np.uint64:
            return (keys >> _U64(32)).astype(np.uint32)
        return keys.astype(self.key_dtype)

    def clear(self) -> None:
        self.keys = np.zeros(0, dtype=self.key_dtype)  # the base: one entry per (key, slot), by key
        self.slots = np.zeros(0, dtype=np.int32)
        self.mid_keys = np.zeros(0, dtype=self.key_dtype)  # merged additions, the same layout
        self.mid_slots = np.zeros(0, dtype=np.int32)
        self.new: dict[int, int | list[int]] = {}
        self.n_new = 0
        self._drop_disk()

    def _drop_disk(self) -> None:
        if self.disk is not None:
            self.disk.close()
        self.disk = None
        self._pre = None

    def entries(self) -> tuple[np.ndarray, np.ndarray]:
        """The base's (keys, slots), read back when it is spilled (tests, checks)."""
        if self.disk is None:
            return self.keys, self.slots
        recs = list(self.disk.windows(1 << 20))
        rec = np.concatenate(recs) if recs else np.zeros(0, dtype=self.disk.rec)
        return rec["k"].copy(), rec["s"].copy()

    def build(self, keys: np.ndarray, slots: np.ndarray) -> None:
        """Replace everything by these (key, slot) entries, given in slot order."""
        if self.spill_to is not None:  # into the file, as a load's parts go
            self.build_parts([(keys, slots)])
            return
        # A few arrays of the size of every entry of the window at once, freed as soon as done with (the
        # peak memory of a large commit is here): the arguments too, when the caller passed temporaries.
        self.clear()
        keys = self.held_as(keys)
        order = np.argsort(keys, kind="stable")
        k = keys[order]
        del keys
        sl = slots[order].astype(np.int32)
        del slots, order
        starts = np.flatnonzero(np.concatenate(([True], k[1:] != k[:-1]))) if k.size else np.zeros(0, np.int64)
        lens = np.diff(np.append(starts, k.size))
        long = lens > self.cap
        if long.any():  # keys held more than `cap` times keep their first `cap` slots
            drop, _, _ = _ragged(starts[long] + self.cap, lens[long] - self.cap)
            keep = np.ones(k.size, dtype=bool)
            keep[drop] = False
            del drop
            k, sl = k[keep], sl[keep]
        self.keys, self.slots = k, sl

    def build_parts(self, parts: Iterable[tuple[np.ndarray, np.ndarray]]) -> None:
        """`build` over the (keys, slots) entries of `parts`, given in slot order. With `spill_to` they are
        never all in memory: each part's entries go to one of 64 bucket files by their key's top bits, then
        each bucket is sorted and capped, as `build` does, into the postings file, buckets in key order."""
        if self.spill_to is None:
            got = list(parts)
            keys = np.concatenate([k for k, _ in got]) if got else np.zeros(0, dtype=self.key_dtype)
            slots = np.concatenate([sl for _, sl in got]) if got else np.zeros(0, dtype=np.int32)
            del got
            self.build(keys, slots)
            return
        self.clear()
        rec = np.dtype([("k", self.key_dtype), ("s", np.int32)])
        shift = self.key_dtype.type(self.key_dtype.itemsize * 8 - _BUILD_BUCKET_BITS)
        buckets: dict[int, Any] = {}
        try:
            for keys, slots in parts:
                keys = self.held_as(keys)
                which = (keys >> shift).astype(np.int64)
                order = np.argsort(which, kind="stable")  # within a bucket, the part's order: slot order
                which = which[order]
                entries = np.empty(keys.size, dtype=rec)
                entries["k"], entries["s"] = keys[order], slots[order]
                del keys, slots, order
                bounds = np.flatnonzero(np.diff(which)) + 1
                for part in np.split(np.arange(which.size), bounds):
                    if part.size:
                        b = int(which[part[0]])
                        if b not in buckets:
                            buckets[b] = tempfile.TemporaryFile(dir=self.spill_to)
                        buckets[b].write(entries[part[0]:part[-1] + 1].tobytes())
                del entries, which
            out = _SortedFile(self.spill_to, self.key_dtype)
            for b in sorted(buckets):
                f = buckets[b]
                f.seek(0)
                entries = np.frombuffer(f.read(), dtype=rec)
                order = np.argsort(entries["k"], kind="stable")  # a key's slots stay in slot order
                k, sl = entries["k"][order], entries["s"][order]
                del entries, order
                keep = _rank_in_runs(k) < self.cap
                out.append(k[keep], sl[keep])
            if out.size:
                self.disk = out.finish()
            else:
                out.close()
        finally:
            for f in buckets.values():
                f.close()

    def add(self, slot: int, keys: np.ndarray) -> None:
        keys = self.held_as(keys)
        new = self.new
        keys_list = keys.tolist()
        in_mid = _runs_in(self.mid_keys, keys)[1] if self.mid_keys.size else None
        if len(set(keys_list)) < len(keys_list):  # a key twice in the document: one key at a time, in order
            self._add_each(slot, keys_list, in_mid.tolist() if in_mid is not None else [0] * len(keys_list))
        else:
            # Distinct keys are independent: those no addition holds yet (most of them) go in at once, the
            # others one at a time against the cap (a loop over every key cost most of an index's add)
            held = new.keys() & keys_list
            if in_mid is not None and in_mid.any():
                held.update(keys[in_mid > 0].tolist())
            if held:
                at = [i for i, h in enumerate(keys_list) if h in held]
                self._add_each(slot, [keys_list[i] for i in at],
                               in_mid[at].tolist() if in_mid is not None else [0] * len(at))
                keys_list = [h for h in keys_list if h not in held]
            new.update(dict.fromkeys(keys_list, slot))
            self.n_new += len(keys_list)
        if len(new) > self.recent_max:
            self._merge_recent()

    def add_many(self, slots: np.ndarray, keys: np.ndarray) -> None:
        """`add(slots[i], keys[i])` for each entry i in turn (a text's slot once for each of its keys), in one
        pass: the same entries. A key that no addition holds and that occurs once among `keys` (most keys of
        texts that share nothing) goes in with the others like it at once, into the sorted tier while it is
        small (else into the dict); the rest go one at a time in order, against the cap."""
        if not slots.size:
            return
        flat = self.held_as(keys)
        order = np.argsort(flat, kind="stable")
        s = flat[order]
        busy = np.zeros(flat.size, dtype=bool)  # a key held already, or a repeat of an earlier entry's
        busy[order[1:]] = s[1:] == s[:-1]
        if self.mid_keys.size:
            busy |= _runs_in(self.mid_keys, flat)[1] > 0
        new = self.new
        if new:
            held = new.keys() & flat.tolist()
            if held:
                busy |= np.isin(flat, np.fromiter(held, dtype=flat.dtype, count=len(held)))
        simple = ~busy[order]  # in key order
        if self.mid_keys.size + flat.size <= _COPY_TIER_BELOW:
            # straight into the sorted tier (none of these keys is in it): no dict entry to make and merge later
            ks, ss = s[simple], slots[order][simple].astype(np.int32)
            at = np.searchsorted(self.mid_keys, ks)
            self.mid_keys, self.mid_slots = np.insert(self.mid_keys, at, ks), np.insert(self.mid_slots, at, ss)
            self.n_new += int(ks.size)
        else:
            self.n_new += int(np.count_nonzero(simple))
            new.update(zip(s[simple].tolist(), slots[order][simple].tolist(), strict=True))
        if busy.any():  # in order: a key's slots stay in the order added (its first entry may be among those above)
            at = np.flatnonzero(busy)
            some = flat[at]
            mid = _runs_in(self.mid_keys, some)[1].tolist() if self.mid_keys.size else [0] * at.size
            for slot, h, m in zip(slots[at].tolist(), some.tolist(), mid, strict=True):
                self._add_each(slot, [h], [m])
        if len(new) > self.recent_max:
            self._merge_recent()

    def _add_each(self, slot: int, keys_list: list[int], in_mid: list[int]) -> None:
        """`slot` for each key in turn, unless the key's holders among the additions (the dict's and
        `in_mid`, the sorted tier's) reach the cap."""
        new, cap = self.new, self.cap
        for h, mid in zip(keys_list, in_mid, strict=True):
            held = new.get(h)
            count = (0 if held is None else 1 if type(held) is int else len(held)) + mid
            if count and count >= cap:
                continue
            if held is None:
                new[h] = slot
            elif type(held) is int:
                new[h] = [held, slot]
            else:
                held.append(slot)
            self.n_new += 1

    def _merge_recent(self) -> None:
        """Move the dict's additions into the sorted tier (sorted, then inserted in one copy of the tier)."""
        new, self.new = self.new, {}
        k = np.fromiter(new.keys(), dtype=self.key_dtype, count=len(new))
        try:  # most often every key has one slot: numpy reads the ints itself (a generator cost 4x as much)
            sl = np.fromiter(new.values(), dtype=np.int64, count=len(new))
        except TypeError:  # a list among them
            sl = np.fromiter((v if type(v) is int else -1 for v in new.values()), dtype=np.int64, count=len(new))
        several = np.flatnonzero(sl < 0)  # keys held by several slots: their lists, expanded in order
        if several.size:
            lists = [new[h] for h in k[several].tolist()]
            lens = np.array([len(held) for held in lists], dtype=np.int64)
            k = np.concatenate([np.delete(k, several), np.repeat(k[several], lens)])
            sl = np.concatenate([np.delete(sl, several), np.fromiter(itertools.chain.from_iterable(lists),
                                                                     dtype=np.int64, count=int(lens.sum()))])
        del new
        o = np.argsort(k, kind="stable")  # a key's slots stay in the order they were added
        k, sl = k[o], sl[o].astype(np.int32)
        del o
        if self.mid_keys.size <= _COPY_TIER_BELOW:  # np.insert's copy is ten times faster than moving in place
            at = np.searchsorted(self.mid_keys, k, side="right")
            self.mid_keys, self.mid_slots = np.insert(self.mid_keys, at, k), np.insert(self.mid_slots, at, sl)
        else:
            self._insert("mid_keys", "mid_slots", k, sl)

    def outgrown(self) -> bool:
        if self.spill_to is not None:  # the additions are what the process holds: bounded
            return self.n_new > self.spill_after
        return self.n_new > max(50_000, self.slots.size // 2)

    def prefetch(self, keys: np.ndarray) -> None:
        """Read the spilled base's answers for `keys` (every key the next lookups will ask for: those of the
        documents to be added next) in one pass over the file. Until `forget` or the next `absorb`, a lookup
        takes the file's answers from these: a key not among them is taken as absent from the file."""
        self._pre = None
        if self.disk is not None:
            u = np.unique(self.held_as(keys))
            start, count, slots = self.disk.runs(u)
            hit = count > 0  # only the keys the file holds are kept (most keys are in no other text)
            self._pre = (u[hit], start[hit], count[hit], slots)

    def forget(self) -> None:
        """Drop the prefetched answers (lookups read the file again)."""
        self._pre = None

    def _disk_lookup(self, keys: np.ndarray) -> np.ndarray:
        """The spilled base's slots for each of `keys` (held_as'd): from the prefetched answers, else read now."""
        assert self.disk is not None
        if self._pre is not None:
            u, start, count, slots = self._pre
            if not u.size:
                return np.zeros(0, dtype=np.int64)
        else:
            u = np.unique(keys)
            start, count, slots = self.disk.runs(u)
        at = np.minimum(np.searchsorted(u, keys), u.size - 1)
        have = u[at] == keys
        if not have.any():
            return slots[:0]
        idx, _, _ = _ragged(start[at[have]], count[at[have]])
        return slots[idx]

    def absorb(self) -> None:
        """Merge the additions into the base: the base that `build` over every entry so far would give.

        The base holds each key's first `cap` slots of the documents before it was built, the tiers later
        slots (capped among themselves), so each key keeps the first `cap` of its base run and then its
        tier run. Only the additions are sorted, and the base grows in place (`build` over the whole
        window sorted every entry again: its temporaries were the peak memory of a large commit)."""
        if self.new:
            self._merge_recent()
        ak, asl = self.mid_keys, self.mid_slots
        self.mid_keys, self.mid_slots = np.zeros(0, dtype=self.key_dtype), np.zeros(0, dtype=np.int32)
        self.n_new = 0
        if not ak.size:
            return
        if self.spill_to is not None:
            self._absorb_to_file(ak, asl)
            return
        if not self.keys.size:  # nothing held yet: every addition stays
            self._insert("keys", "slots", ak, asl, np.zeros(ak.size, dtype=np.int64))
            return
        # A block of additions at a time, the kept ones compacted to the front of `ak`/`asl` in place: the
        # temporaries are a block's, plus `at` (8 bytes an addition), not several arrays of every addition
        # (those were the peak memory of a large commit, ~1.7 KB a document).
        m = ak.size
        at = np.empty(m, dtype=np.int64)  # where each kept addition goes: after the base's holders of its key
        kept = 0
        run_key, run_start = None, 0  # the last key of the previous block and where its run of additions began
        for lo in range(0, m, _MOVE_BLOCK):
            hi = min(m, lo + _MOVE_BLOCK)
            k = ak[lo:hi]
            after = np.searchsorted(self.keys, k, side="right")
            held = after - np.searchsorted(self.keys, k, side="left")  # base holders of each addition's key
            pos = np.arange(lo, hi)
            starts = np.empty(k.size, dtype=bool)  # the first addition of its key (`ak` is sorted)
            starts[0] = run_key is None or k[0] != run_key
            np.not_equal(k[1:], k[:-1], out=starts[1:])
            first = np.maximum.accumulate(np.where(starts, pos, run_start))
            held += pos - first  # plus the rank among the additions of its key
            keep = held < self.cap
            run_key, run_start = k[-1], int(first[-1])  # read before the block is overwritten below
            n_keep = int(np.count_nonzero(keep))
            ak[kept:kept + n_keep] = k[keep]  # kept <= lo: only entries already read are overwritten
            asl[kept:kept + n_keep] = asl[lo:hi][keep]
            at[kept:kept + n_keep] = after[keep]
            kept += n_keep
        self._insert("keys", "slots", ak[:kept], asl[:kept], at[:kept])

    def _absorb_to_file(self, ak: np.ndarray, asl: np.ndarray) -> None:
        """`absorb` with the base in a file: the base is read a window at a time and written again with the
        additions of the window's keys merged in (kept as `absorb` keeps them), then the additions past its
        last key; the process holds a window and the additions."""
        out = _SortedFile(self.spill_to, self.key_dtype)  # type: ignore[arg-type]
        done = 0  # additions merged so far
        if self.disk is not None:
            for rec in self.disk.windows(1 << 18):
                upto = int(np.searchsorted(ak, rec["k"][-1], side="right"))
                self._merge_window(out, rec["k"], rec["s"], ak[done:upto], asl[done:upto])
                done = upto
        none = np.zeros(0, dtype=self.key_dtype)
        self._merge_window(out, none, none.astype(np.int32), ak[done:], asl[done:])
        self._drop_disk()
        self.disk = out.finish()

    def _merge_window(self, out: _SortedFile, bk: np.ndarray, bs: np.ndarray, ak: np.ndarray, asl: np.ndarray
                      ) -> None:
        """Base entries and the sorted additions of the same keys, merged as `absorb` merges them, to `out`."""
        if ak.size:
            held = np.searchsorted(bk, ak, side="right") - np.searchsorted(bk, ak, side="left")
            keep = held + _rank_in_runs(ak) < self.cap
            ak, asl = ak[keep], asl[keep]
        if not ak.size:
            out.append(bk, bs)
            return
        k = np.concatenate([bk, ak])
        order = np.argsort(k, kind="stable")  # a key's base entries first, then its additions
        out.append(k[order], np.concatenate([bs, asl.astype(np.int32)])[order])

    def _insert(self, keys_attr: str, slots_attr: str, ak: np.ndarray, asl: np.ndarray,
                at: np.ndarray | None = None) -> None:
        """Sorted (key, slot) entries into a tier, after its holders of the same keys (the older ones;
        `at`: where they go, when known).

        Each array is enlarged in place where numpy allows it (no other reference, hence no local name for
        it here): a large block is then remapped by realloc, not copied, so the old and the new tier never
        coexist."""
        if at is None:
            at = np.searchsorted(getattr(self, keys_attr), ak, side="right")
        n, m = getattr(self, keys_attr).size, ak.size
        for attr, values in ((keys_attr, ak), (slots_attr, asl)):
            try:
                getattr(self, attr).resize(n + m, refcheck=True)
            except ValueError:  # referred to elsewhere (a view): a copy
                setattr(self, attr, np.concatenate([getattr(self, attr), np.empty(m, dtype=getattr(self, attr).dtype)]))
            _insert_sorted(getattr(self, attr), n, at, values)

    def holds(self, keys: np.ndarray) -> np.ndarray:
        """Whether any slot holds each of `keys` (a mask): `lookup` of a key is empty where this is False. A
        spilled base is read from the prefetched answers when there are some (see `prefetch`)."""
        keys = self.held_as(keys)
        out = np.zeros(keys.size, dtype=bool)
        if not keys.size:
            return out
        tiers = [self.keys, self.mid_keys]  # each sorted
        if self.disk is not None:
            if self._pre is not None:
                tiers.append(self._pre[0])
            else:
                u = np.unique(keys)
                tiers.append(u[self.disk.runs(u)[1] > 0])
        if self.new:
            hits = self.new.keys() & keys.tolist()
            if hits:
                tiers.append(np.sort(np.fromiter(hits, dtype=keys.dtype, count=len(hits))))
        for tier in tiers:
            if tier.size:
                at = np.minimum(np.searchsorted(tier, keys), tier.size - 1)
                out |= tier[at] == keys
        return out

    def lookup(self, keys: np.ndarray, keys_list: list[int]) -> np.ndarray:
        """Slots holding each key (one entry per key held, so counts are shared keys)."""
        if keys.dtype != self.key_dtype:
            keys = self.held_as(keys)
            keys_list = keys.tolist()
        out = []
        if self.disk is not None and keys.size:
            out.append(self._disk_lookup(keys))
        for tier_keys, tier_slots in ((self.keys, self.slots), (self.mid_keys, self.mid_slots)):
            if tier_keys.size:
                lo, n = _runs_in(tier_keys, keys)
                if n.any():
                    idx, _, _ = _ragged(lo, n)
                    out.append(tier_slots[idx])
        hits = self.new.keys() & keys_list if self.new else None  # most keys are in no addition
        if hits:
            new = self.new
            extra: list[int] = []
            for h in keys_list:
                if h in hits:  # each time the key is asked for, as the tiers answer
                    held = new[h]
                    if type(held) is int:
                        extra.append(held)
                    else:
                        extra.extend(held)
            out.append(np.array(extra, dtype=np.int64))
        if not out:
            return np.zeros(0, dtype=np.int64)
        return out[0].astype(np.int64) if len(out) == 1 else np.concatenate(out, dtype=np.int64)


class _SortedFile:
    """Sorted (key, slot) entries in an unnamed temporary file, written in key order (`append`, then
    `finish`) and searched for many keys at once (`runs`). In memory it keeps only the last key of each
    segment of `segment` entries, so a big index's postings cost the process a few bytes per thousand
    entries, not 8 an entry; a search reads the segments its keys fall in, consecutive ones in one read."""

    def __init__(self, directory: str | os.PathLike[str], key_dtype: Any, segment: int = 4096):
        self.rec = np.dtype([("k", key_dtype), ("s", np.int32)])
        self.segment = segment
        self._file = tempfile.TemporaryFile(dir=directory)
        self.size = 0
        self.max_run = 0  # the longest run of one key: how far past its segment a key's entries may reach
        self._run_key: Any = None
        self._run_len = 0
        self._lasts: list[np.ndarray] = []
        self.last_key = np.zeros(0, dtype=key_dtype)  # the last key of each segment (`finish`)

    def append(self, keys: np.ndarray, slots: np.ndarray) -> None:
        """Entries after every entry so far (`keys` sorted, none smaller than the last one appended)."""
        if not keys.size:
            return
        rec = np.empty(keys.size, dtype=self.rec)
        rec["k"], rec["s"] = keys, slots
        os.pwrite(self._file.fileno(), rec.data, self.size * self.rec.itemsize)
        # the last key of each segment that ends among these entries
        ends = np.arange(-(-(self.size + 1) // self.segment) * self.segment, self.size + keys.size + 1, self.segment)
        self._lasts.append(keys[ends - 1 - self.size])
        # runs of one key, continued from the previous entries
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        lens = np.diff(np.append(starts, keys.size))
        if self._run_key is not None and keys[0] == self._run_key:
            lens[0] += self._run_len
        self.max_run = max(self.max_run, int(lens.max()))
        self._run_key, self._run_len = keys[-1], int(lens[-1])
        self.size += keys.size

    def finish(self) -> _SortedFile:
        if self.size % self.segment:  # the last, partial segment
            self._lasts.append(np.array([self._run_key], dtype=self.rec["k"]))
        self.last_key = np.concatenate(self._lasts) if self._lasts else np.zeros(0, dtype=self.rec["k"])
        self._lasts = []
        return self

    def read(self, lo: int, hi: int) -> np.ndarray:
        raw = os.pread(self._file.fileno(), (hi - lo) * self.rec.itemsize, lo * self.rec.itemsize)
        return np.frombuffer(raw, dtype=self.rec)

    def windows(self, size: int) -> Iterator[np.ndarray]:
        """Every entry in order, about `size` at a time, a key's entries never split between two windows."""
        lo = 0
        while lo < self.size:
            hi = min(self.size, lo + size)
            rec = self.read(lo, min(self.size, hi + self.max_run))
            if hi < self.size:  # up to the end of the run the window's last entry is in
                rec = rec[: int(np.searchsorted(rec["k"], rec["k"][hi - lo - 1], side="right"))]
            yield rec
            lo += rec.size

    def runs(self, keys: np.ndarray, group: int = 64) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For sorted distinct `keys`: (where each key's slots start in the third array, how many there are,
        the slots), a key's slots in file order. Reads the segments the keys fall in, up to `group`
        consecutive ones at a time."""
        start = np.zeros(keys.size, dtype=np.int64)
        count = np.zeros(keys.size, dtype=np.int64)
        found: list[np.ndarray] = []
        n_found = 0
        seg = np.searchsorted(self.last_key, keys, side="left")  # the segment where each key's run begins
        needed = np.unique(seg[seg < self.last_key.size])
        if needed.size:
            # runs of consecutive segments, cut every `group` segments: one read each
            cut = np.flatnonzero((np.diff(needed) != 1) | (np.arange(1, needed.size) % group == 0)) + 1
            for part in np.split(needed, cut):
                s0, s1 = int(part[0]), int(part[-1])
                q0, q1 = int(np.searchsorted(seg, s0, side="left")), int(np.searchsorted(seg, s1, side="right"))
                lo = s0 * self.segment
                rec = self.read(lo, min(self.size, (s1 + 1) * self.segment + self.max_run))
                q = keys[q0:q1]
                a = np.searchsorted(rec["k"], q, side="left")
                n = np.searchsorted(rec["k"], q, side="right") - a
                hit = np.flatnonzero(n)
                if hit.size:
                    idx, _, _ = _ragged(a[hit], n[hit])
                    found.append(rec["s"][idx].astype(np.int64))
                    start[q0 + hit] = n_found + np.cumsum(n[hit]) - n[hit]
                    count[q0 + hit] = n[hit]
                    n_found += int(n[hit].sum())
        slots = np.concatenate(found) if found else np.zeros(0, dtype=np.int64)
        return start, count, slots

    def close(self) -> None:
        self._file.close()


_STORE_WRITE_BYTES = 1 << 18  # an ArrayStore writes its file this much at a time


class ArrayStore:
    """A growing list of 1-D arrays of one dtype (a document's sampled keys, or its MinHash values), held in
    memory or, with `spill_to` (a directory), in an unnamed temporary file there, read back one array at a
    time (`os.pread`, no mapping: what is read is freed once used, and the process's memory stays flat in
    the number of documents). A spilled array costs 12 bytes of memory (offset and length)."""

    def __init__(self, dtype: Any, spill_to: str | os.PathLike[str] | None = None):
        self.dtype = np.dtype(dtype)
        self.spill_to = spill_to
        self._list: list[np.ndarray] | None = None if spill_to is not None else []
        self._file = None
        if spill_to is not None:
            os.makedirs(spill_to, exist_ok=True)
            self._file = tempfile.TemporaryFile(dir=spill_to)
        self._end = 0  # bytes of the store: in the file, then in `_pending`
        # Small arrays wait here and go to the file together: a write per array (a page spool's or an index's
        # few hundred bytes) cost a system call each, 9 for every page of a run
        self._pending = bytearray()
        self._flushed = 0  # bytes in the file; `_pending` holds the bytes from there to `_end`
        self._offset = np.zeros(0, dtype=np.int64)  # spilled: where each array starts in the file ...
        self._size = np.zeros(0, dtype=np.int32)  # ... and its number of elements
        self._n = 0

    def __len__(self) -> int:
        return self._n if self._list is None else len(self._list)

    def append(self, a: np.ndarray) -> None:
        a = np.ascontiguousarray(a, dtype=self.dtype)
        if self._list is not None:
            self._list.append(a)
            return
        assert self._file is not None
        if self._n == self._offset.size:  # grown by half: amortised O(1) appends
            grow = max(1024, self._n // 2)
            self._offset = np.concatenate([self._offset, np.zeros(grow, dtype=np.int64)])
            self._size = np.concatenate([self._size, np.zeros(grow, dtype=np.int32)])
        self._offset[self._n], self._size[self._n] = self._end, a.size
        if a.size:
            self._pending += a.data
            self._end += a.nbytes
            if len(self._pending) >= _STORE_WRITE_BYTES:
                self._flush()
        self._n += 1

    def _flush(self) -> None:
        if self._pending:
            assert self._file is not None
            os.pwrite(self._file.fileno(), self._pending, self._flushed)
            self._flushed = self._end
            self._pending = bytearray()

    def extend(self, arrays: Iterable[np.ndarray]) -> None:
        for a in arrays:
            self.append(a)

    def __getitem__(self, i: int) -> np.ndarray:
        if self._list is not None:
            return self._list[i]
        if not 0 <= i < self._n:
            raise IndexError(i)
        size = int(self._size[i])
        if not size:
            return np.zeros(0, dtype=self.dtype)
        start, nbytes = int(self._offset[i]), size * self.dtype.itemsize
        if start >= self._flushed:  # not written yet: a copy, as the buffer grows on
            at = start - self._flushed
            return np.frombuffer(bytes(self._pending[at: at + nbytes]), dtype=self.dtype)
        assert self._file is not None
        raw = os.pread(self._file.fileno(), nbytes, start)
        return np.frombuffer(raw, dtype=self.dtype)

    def __iter__(self) -> Iterator[np.ndarray]:
        return (self[i] for i in range(len(self)))

    def size(self, i: int) -> int:
        return int(self._size[i]) if self._list is None else self._list[i].size

    def sizes(self, slots: Sequence[int] | None = None) -> np.ndarray:
        """Elements of each array (of `slots`, default all)."""
        if self._list is None:
            sizes = self._size[: self._n]
            return (sizes if slots is None else sizes[np.asarray(slots, dtype=np.int64)]).astype(np.int64)
        chosen = self._list if slots is None else [self._list[i] for i in slots]
        return np.array([a.size for a in chosen], dtype=np.int64)

    def concat(self, slots: Sequence[int] | None = None) -> np.ndarray:
        """The arrays of `slots` (default all) end to end."""
        if slots is None and self._file is not None:  # all of them: the file, in one read (a load, a prune)
            self._flush()
            self._file.seek(0)
            return np.fromfile(self._file, dtype=self.dtype, count=self._end // self.dtype.itemsize)
        chosen = range(len(self)) if slots is None else slots
        if self._list is not None or not len(chosen):
            parts = [self[i] for i in chosen]
            return np.concatenate(parts) if parts else np.zeros(0, dtype=self.dtype)
        idx = np.asarray(chosen, dtype=np.int64)
        if idx.min() < 0 or idx.max() >= self._n:
            raise IndexError(int(idx.max()) if idx.max() >= self._n else int(idx.min()))
        # consecutive arrays lie end to end: one read for each run of consecutive slots (a commit's new
        # entries are one run), not one for each array
        runs = np.split(idx, np.flatnonzero(np.diff(idx) != 1) + 1)
        step = self.dtype.itemsize
        parts = [self._bytes(int(self._offset[r[0]]), int(self._offset[r[-1]]) + int(self._size[r[-1]]) * step)
                 for r in runs]
        return np.frombuffer(b"".join(parts), dtype=self.dtype)  # (one part: joined, it is that part itself)

    def _bytes(self, start: int, end: int) -> bytes:
        """The store's bytes from `start` to `end`: the file's, then those still waiting to be written."""
        out = b""
        if start < self._flushed:
            assert self._file is not None
            out = os.pread(self._file.fileno(), min(end, self._flushed) - start, start)
        if end > self._flushed:
            out += bytes(self._pending[max(start, self._flushed) - self._flushed: end - self._flushed])
        return out

    def take(self, keep: Sequence[int]) -> ArrayStore:
        """A new store of the arrays at `keep`, in that order (spilled to the same directory)."""
        out = ArrayStore(self.dtype, self.spill_to)
        out.extend(self[i] for i in keep)
        return out

    def close(self) -> None:
        self._pending = bytearray()
        if self._file is not None:
            self._file.close()


class DedupIndex:
    """Near-duplicate index over a rolling window of recent articles.

    :meth:`add` assigns each document to a cluster once, in arrival order: the cluster of the best
    accepted indexed document (exact content hash first, then near-duplicate verification), else a
    new cluster named after the document. Cluster ids never change. Persist with :meth:`to_arrow` /
    :meth:`from_arrow`, keep the window bounded with :meth:`prune`; memory, loading and lookups scale
    with the window, not with the history.

    Candidates come from MinHash LSH buckets and from capped postings of the sampled shingles; template
    shingles (used by ``template_clusters`` clusters of the window, or ``source_template_clusters``
    clusters of one source) are counted in a count-min sketch and are not evidence.
    """

    def __init__(self, settings: DedupSettings | None = None, *, tuning: DedupTuning | None = None,
                 spill_to: str | os.PathLike[str] | None = None):
        self.settings = settings if settings is not None else _DefaultSettings()
        self._spill_to = spill_to
        self.tuning = tuning if tuning is not None else DedupTuning()
        st = self.settings
        self._num_perm = int(st.num_perm)
        self._bands = int(st.bands)
        if self._bands < 1 or self._num_perm % self._bands:
            raise ValueError(f"bands ({self._bands}) must divide num_perm ({self._num_perm})")
        self._rows = self._num_perm // self._bands
        self._window = int(st.window_days) * _DAY_US
        self._reset()

    def _reset(self) -> None:
        # ids and content hashes as their bytes (pipeline.columns): as strings in lists and dicts they cost
        # ~230 bytes a document, the most after the postings
        self._ids = HexColumn(8)
        self._cluster = HexColumn(8)  # a cluster is named after its first document
        self._hash = HexColumn(16)
        self._source: list[str | None] = []  # one string per source
        # numbers in arrays: a Python int per document and column cost ~36 bytes
        self._src = array.array("Q")  # _source_key of the source
        self._seen = array.array("q")  # first seen, microseconds since the epoch
        self._ntok = array.array("q")
        # the documents' MinHash values and sampled keys: on disk with `spill_to`, read back when a lookup
        # compares a candidate (the largest part of the index, ~2.5 KB a document)
        self._mh = ArrayStore(np.uint32, self._spill_to)
        self._sample = ArrayStore(np.uint64, self._spill_to)
        self._match: list[DedupMatch | None] = []
        self._by_id = HexIndex(self._ids)
        self._by_hash = HexIndex(self._hash)  # content hash -> its first document
        tu = self.tuning
        # sampled shingle -> documents, by the high 32 bits of the shingle's hash (8 bytes an entry, not 12): a
        # key shared by chance only adds a candidate, which the comparison of the full samples then refuses
        spill = {"spill_to": self._spill_to, "spill_after": tu.spilled_postings}
        # the dict costs ~110 bytes a key: with a spill file, in proportion to the additions held
        recent = tu.recent_postings if self._spill_to is None else min(tu.recent_postings, tu.spilled_postings // 32)
        self._post = _Postings(tu.posting_cap, recent, key_dtype=np.uint32, **spill)
        # MinHash band -> documents, by the high 32 bits of the band's key too: a bucket shared by chance
        # (~1 lookup in 40 over a window of 100,000 documents) only adds a candidate that verification refuses
        self._lsh = _Postings(tu.posting_cap, recent, key_dtype=np.uint32, **spill)
        self._absorb_later = False  # add_fingerprints: the postings absorb between its batches only
        self._skip_alone_test = 0  # batches of add_fingerprints left before `_without_candidates` runs again
        self._union: dict[str, np.ndarray] = {}  # sorted sampled keys of clusters with several members
        self._multi: set[int] = set()  # slots of pages found to hold several stories (not persisted)
        self._sketch = _Sketch(self.tuning.sketch_bits)

    # ---------------------------------------------------------------- public API

    def __len__(self) -> int:
        return len(self._ids)

    def close(self) -> None:
        """Free the spilled arrays' and postings' files now (they are unnamed, and freed with the index anyway)."""
        self._mh.close()
        self._sample.close()
        self._post.clear()
        self._lsh.clear()

    def __contains__(self, doc_id: object) -> bool:
        return isinstance(doc_id, str) and self._by_id.get(doc_id) is not None

    def cluster_of(self, doc_id: str) -> str | None:
        """Cluster id of an indexed document (None when it is not in the window)."""
        slot = self._by_id.get(doc_id)
        return None if slot is None else self._cluster[slot]

    def add(
        self,
        doc_id: str,
        text: str,
        *,
        content_hash: str | None = None,
        source: str | None = None,
        published_at: datetime | None = None,
        seen_at: datetime | None = None,
    ) -> DedupMatch:
        """Assign ``doc_id`` to a cluster and index it.

        ``content_hash`` overrides the exact-layer hash (pass the stored one so both agree);
        ``source`` (outlet or feed) lets the index learn that outlet's template lines sooner;
        ``seen_at`` (default now) places the document in the window. ``published_at`` is accepted for
        symmetry with the article record but not used: clusters are keyed by first sighting, and which
        copy is canonical is decided downstream. Adding an id that is already indexed returns its
        cluster without re-indexing it.
        """
        del published_at
        known = self._by_id.get(doc_id)
        if known is not None:
            return self._existing(known)
        fp = fingerprint(text, self.settings)
        if content_hash is not None:
            fp = fp._replace(content_hash=content_hash)
        return self.add_fingerprint(doc_id, fp, source=source, seen_at=seen_at)

    def add_many(self, docs: Iterable[dict]) -> list[DedupMatch]:
        """:meth:`add` for ``{id, text, content_hash?, source?, seen_at?}`` dicts, fingerprinted as a batch."""
        items = list(docs)
        fps = fingerprints([str(d.get("text") or "") for d in items], self.settings)
        out = []
        for d, fp in zip(items, fps, strict=True):
            if d.get("content_hash"):
                fp = fp._replace(content_hash=str(d["content_hash"]))
            seen = d.get("seen_at")
            out.append(
                self.add_fingerprint(
                    str(d["id"]), fp, source=d.get("source"), seen_at=seen if isinstance(seen, datetime) else None
                )
            )
        return out

    def add_fingerprint(
        self, doc_id: str, fp: Fingerprint, *, source: str | None = None, seen_at: datetime | None = None
    ) -> DedupMatch:
        """:meth:`add` for a precomputed :func:`fingerprint` (same settings and ``sample_mod``)."""
        return self._add_fingerprint(doc_id, fp, source, seen_at, None)

    def add_fingerprints(
        self, docs: Iterable[tuple[str, Fingerprint, str | None, datetime | None]]
    ) -> Iterator[tuple[str, DedupMatch]]:
        """:meth:`add_fingerprint` of each (doc_id, fingerprint, source, seen_at) in turn, yielding (doc_id,
        match): the same matches. An index with a spill directory reads its spilled postings once for every
        ``tuning.prefetch_docs`` documents, not for each document, and absorbs its additions between them."""
        batch: list[tuple[str, Fingerprint, str | None, datetime | None]] = []
        for doc in docs:
            batch.append(doc)
            if len(batch) >= self.tuning.prefetch_docs:
                yield from self._add_batch(batch)
                batch = []
        if batch:
            yield from self._add_batch(batch)

    def _add_batch(self, batch: list[tuple[str, Fingerprint, str | None, datetime | None]]
                   ) -> Iterator[tuple[str, DedupMatch]]:
        # the band keys of the batch's texts that go to the near-duplicate index, in one computation
        near = [fp for _, fp, _, _ in batch if self._is_near(fp) and fp.minhash.shape == (self._num_perm,)]
        row = {id(fp): r for r, fp in enumerate(near)}
        bands = (self._band_keys(np.stack([fp.minhash for fp in near])).reshape(len(near), self._bands)
                 if near else np.zeros((0, self._bands), dtype=np.uint64))
        if near and (self._post.disk is not None or self._lsh.disk is not None):
            self._post.prefetch(np.concatenate([fp.sample for fp in near]))
            self._lsh.prefetch(bands.reshape(-1))
        if self._skip_alone_test:  # too few texts were alone in a recent batch for the test to pay
            self._skip_alone_test -= 1
            alone = np.zeros(len(near), dtype=bool)
        else:
            alone = self._without_candidates(near, bands)
            if near and np.count_nonzero(alone) < _ALONE_WORTH * len(near):
                self._skip_alone_test = _ALONE_RETEST
        self._absorb_later = True
        # Texts alone that start their cluster (no id or content hash seen before): their insertions wait and go
        # in together (`_insert_lone`), before the next text that needs a lookup, so every text still sees
        # exactly the texts before it
        lone: list[tuple[str, Fingerprint, str | None, int, int, np.ndarray]] = []
        lone_keys: set[str] = set()  # their ids and content hashes (a repeat of either is no lone start)
        try:
            for doc_id, fp, source, seen_at in batch:
                r = row.get(id(fp))
                if r is not None and alone[r] and _BATCH_LONE_INSERTS:
                    seen = _utc_us(seen_at)
                    if (doc_id not in lone_keys and fp.content_hash not in lone_keys
                            and self._starts_cluster(doc_id, fp.content_hash, seen)):
                        lone.append((doc_id, fp, source, _source_key(source), seen, bands[r]))
                        lone_keys.update((doc_id, fp.content_hash))
                        continue
                if lone:
                    yield from self._insert_lone(lone)
                    lone, lone_keys = [], set()
                yield doc_id, self._add_fingerprint(doc_id, fp, source, seen_at, None if r is None else bands[r],
                                                    alone=r is not None and bool(alone[r]))
            if lone:
                yield from self._insert_lone(lone)
        finally:
            self._absorb_later = False
            self._post.forget()
            self._lsh.forget()
        if self._post.outgrown() or self._lsh.outgrown():
            self._post.absorb()
            self._lsh.absorb()

    def _without_candidates(self, near: list[Fingerprint], bands: np.ndarray) -> np.ndarray:
        """For each of a batch's `near` texts (in the order they are added), whether `_candidates` is sure to
        find nothing for it: at most one of its sampled keys is held by an indexed text or by a text before
        it in the batch (a candidate shares two), and none of its LSH band keys. Such a text (most texts:
        most are copies of nothing) skips `_near`, whose result would be (None, False), and its template
        query; the texts before it in the batch are taken as indexed whether or not they will be."""
        n = len(near)
        if not n:
            return np.zeros(0, dtype=bool)
        lens = np.fromiter((fp.sample.size for fp in near), dtype=np.int64, count=n)
        keys = self._post.held_as(np.concatenate([fp.sample for fp in near]))
        # a key both indexed and in an earlier text counts twice: the test is the stricter for it
        shared = _held_before(keys, lens) + np.bincount(np.repeat(np.arange(n), lens)[self._post.holds(keys)],
                                                        minlength=n)
        band_keys = self._lsh.held_as(bands.reshape(-1))
        similar = _held_before(band_keys, np.full(n, self._bands, dtype=np.int64)) + self._lsh.holds(
            band_keys).reshape(n, self._bands).sum(axis=1)
        return (shared <= 1) & (similar == 0)

    def _starts_cluster(self, doc_id: str, content_hash: str, seen: int) -> bool:
        """Whether a text alone (see `_without_candidates`) starts a cluster of its own: its id is not indexed
        and no indexed text of its window has its content hash (`_add_fingerprint`'s exact match)."""
        if self._by_id.get(doc_id) is not None:
            return False
        j = self._by_hash.get(content_hash)
        return j is None or abs(seen - self._seen[j]) > self._window

    def _insert_lone(self, lone: list[tuple[str, Fingerprint, str | None, int, int, np.ndarray]]
                     ) -> Iterator[tuple[str, DedupMatch]]:
        """`_add_fingerprint` of texts alone that start their clusters (doc id, fingerprint, source, its key,
        first seen, LSH band keys), in order: the same index, their postings added in one pass each (a text's
        own addition cost ~45 us of Python, most of its insertion)."""
        first = len(self._ids)
        matches = [DedupMatch(doc_id) for doc_id, *_ in lone]
        samples, posted = [], []
        for (doc_id, fp, source, src, seen, _), match in zip(lone, matches, strict=True):
            sample = self._append(doc_id, fp, match, source, src, seen)
            samples.append(sample)
            posted.append(_posted(sample, self.tuning.posted_keys))
        self._sketch.add_texts(samples, [src for _, _, _, src, _, _ in lone])  # `_count_cluster_keys`: new clusters
        slots = np.arange(first, len(self._ids), dtype=np.int64)
        lens = np.fromiter((k.size for k in posted), dtype=np.int64, count=len(posted))
        self._post.add_many(np.repeat(slots, lens), np.concatenate(posted))
        self._lsh.add_many(np.repeat(slots, self._bands), np.concatenate([b for *_, b in lone]))
        for (doc_id, *_), match in zip(lone, matches, strict=True):
            yield doc_id, match

    def _is_near(self, fp: Fingerprint) -> bool:
        """Whether a text is long enough for near-duplicate matching (else exact matching only)."""
        return fp.n_tokens >= int(self.settings.min_words) and fp.sample.size > 0

    def _add_fingerprint(self, doc_id: str, fp: Fingerprint, source: str | None, seen_at: datetime | None,
                         bands: np.ndarray | None, alone: bool = False) -> DedupMatch:
        """`add_fingerprint`; `bands`: the text's LSH band keys when the caller computed them; `alone`: no
        indexed text can be a candidate (see `_without_candidates`)."""
        known = self._by_id.get(doc_id)
        if known is not None:
            return self._existing(known)
        if fp.minhash.shape != (self._num_perm,):
            raise ValueError(f"fingerprint has {fp.minhash.shape[0]} MinHash values, the index {self._num_perm}")
        seen = _utc_us(seen_at)
        src = _source_key(source)
        match, slot, multi = None, -1, False
        slots = None  # the sketch's slots of the text's keys: its template test and its cluster's count read them
        if fp.n_tokens:
            j = self._by_hash.get(fp.content_hash)
            if j is not None and abs(seen - self._seen[j]) <= self._window:
                match, slot = DedupMatch(self._cluster[j], self._ids[j], "exact", 1.0), j
        near = self._is_near(fp)
        if not near:
            bands = None
        elif bands is None:
            bands = self._band_keys(fp.minhash)  # looked up, then indexed
        if match is None and near:
            slots = self._sketch_slots(fp.sample, src)
            found, multi = (None, False) if alone else self._near(fp, src, seen, bands, slots)
            if found is not None:
                slot, c = found
                match = DedupMatch(self._cluster[slot], self._ids[slot], "near", round(c, 4))
        if match is None:
            match = DedupMatch(doc_id)
        self._insert(doc_id, fp, match, source, src, seen, bands, slots)
        if multi:
            self._multi.add(len(self._ids) - 1)
        return match

    def prune(self, older_than: datetime) -> int:
        """Drop documents first seen before ``older_than``; returns how many were dropped.

        Remaining documents keep their cluster ids even when the cluster's first document goes.
        """
        cut = _utc_us(older_than)
        keep = [i for i, t in enumerate(self._seen) if t >= cut]
        dropped = len(self._seen) - len(keep)
        if dropped:
            self._compact(keep)
        return dropped

    # ---------------------------------------------------------------- matching

    def _existing(self, slot: int) -> DedupMatch:
        m = self._match[slot]
        if m is not None:
            return m
        cid = self._cluster[slot]
        return DedupMatch(cid) if cid == self._ids[slot] else DedupMatch(cid, cid)

    def _sketch_slots(self, keys: np.ndarray, src: int) -> tuple[np.ndarray, np.ndarray]:
        """The sketch's slots of `keys` and, with a source, of the source's keys after them: what a text's
        template test reads and what its cluster adds (a text starting its cluster: the same keys)."""
        return self._sketch._slots(_sketch_keys(keys, src))

    def _template(self, keys: np.ndarray, src: int,
                  slots: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
        """Template shingles: used by many clusters of the window, or by several of one source. `slots`:
        `_sketch_slots(keys, src)` when the caller has them."""
        st = self.settings
        # the keys and their source's keys in one query (half the sketch's per-call work)
        counts = self._sketch.query_slots(slots if slots is not None else self._sketch_slots(keys, src))
        if not src:
            return counts >= int(st.template_clusters)
        n = keys.size
        return (counts[:n] >= int(st.template_clusters)) | (counts[n:] >= int(st.source_template_clusters))

    def _band_keys(self, mh: np.ndarray) -> np.ndarray:
        """LSH bucket keys of one (num_perm,) or many (n, num_perm) MinHash signatures, flattened."""
        m = mh.reshape(-1, self._bands, self._rows).astype(np.uint64) * _BAND_COEF[: self._rows]
        key = m.sum(axis=2, dtype=np.uint64) + np.arange(self._bands, dtype=np.uint64) * _U64(0xD6E8FEB86659FD93)
        return _fmix64(key.reshape(-1))

    def _candidates(self, inf_keys: np.ndarray, bands: np.ndarray, seen: int) -> list[int]:
        held = self._post.held_as(inf_keys)
        shared = self._post.lookup(held, held.tolist())
        similar = self._lsh.lookup(bands, bands.tolist())  # MinHash LSH: a high Jaccard similarity
        if shared.size < 2 and not similar.size:  # most texts: no document shares two keys with them
            return []
        cand, hits = np.unique(shared, return_counts=True)
        cand = cand[hits >= 2]
        hits = hits[hits >= 2]
        if similar.size:
            extra = np.setdiff1d(similar, cand)
            cand = np.concatenate([cand, extra])
            hits = np.concatenate([hits, np.full(extra.size, 2)])
        if cand.size == 0:
            return []
        seen_at = self._seen
        ok = np.array([abs(seen_at[c] - seen) <= self._window for c in cand.tolist()], dtype=bool)
        cand, hits = cand[ok], hits[ok]
        if cand.size > 32:
            top = np.argsort(-hits, kind="stable")[:32]
            cand = cand[np.sort(top)]
        return cand.tolist()

    def _near(self, fp: Fingerprint, src: int, seen: int, bands: np.ndarray,
              slots: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[tuple[int, float] | None, bool]:
        """(best accepted candidate and its containment, whether the text is a multi-story page); `bands`: the
        text's LSH band keys; `slots`: as `_template`'s."""
        tu, st = self.tuning, self.settings
        x = fp.sample[~self._template(fp.sample, src, slots)]  # informative keys, text order
        if x.size < tu.min_evidence:
            return None, False
        cands = self._candidates(x, bands, seen)
        if not cands:
            return None, False
        x_order = np.argsort(x)
        x_sorted = x[x_order]
        n_c = len(cands)
        n_x = np.full(n_c, x.size)
        n_y = np.zeros(n_c, dtype=np.int64)
        inter = np.zeros(n_c, dtype=np.int64)
        first = np.zeros(n_c)
        last = np.zeros(n_c)
        for q, s in enumerate(cands):
            y = self._sample[s]
            y = y[~self._template(y, self._src[s])]
            n_y[q] = y.size
            if y.size == 0:
                continue
            pos = np.searchsorted(x_sorted, y)
            pos[pos >= x.size] = 0
            in_x = x_sorted[pos] == y  # y's keys that x has, in y's order
            inter[q] = int(in_x.sum())
            if inter[q] == 0:
                continue
            if x.size > y.size:  # where the shared text sits in x
                ranks = x_order[pos[in_x]]
                first[q], last[q] = ranks.min() / x.size, (ranks.max() + 1) / x.size
            else:
                at = np.flatnonzero(in_x)
                first[q], last[q] = at[0] / y.size, (at[-1] + 1) / y.size
        ok, c, cov = _judge(n_x, n_y, inter, first, st, tu)
        x_longer = n_x > n_y
        parts = [
            (self._cluster[s], first[q], last[q])
            for q, s in enumerate(cands)
            if x_longer[q] and c[q] >= st.min_containment and tu.composite_share <= cov[q] < st.full_coverage
        ]
        if len(parts) >= 2 and _is_composite(parts):
            return None, True  # a page holding several stories is a copy of none of them
        if self._multi:  # ... and no story joins such a page through a partial match
            for q, s in enumerate(cands):
                if s in self._multi and not x_longer[q] and cov[q] < st.full_coverage:
                    ok[q] = False
        score = np.where(ok, c + 0.25 * cov, -1.0)
        q = int(np.argmax(score))
        return ((cands[q], float(c[q])) if ok[q] else None), False

    # ---------------------------------------------------------------- bookkeeping

    def _insert(
        self, doc_id: str, fp: Fingerprint, match: DedupMatch, source: str | None, src: int, seen: int,
        bands: np.ndarray | None, slots: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Index a document. `bands`: its LSH band keys, None when it is too short for near-duplicates;
        `slots`: `_sketch_slots` of its sample when the caller has them."""
        sample = self._append(doc_id, fp, match, source, src, seen)
        slot = len(self._ids) - 1
        self._count_cluster_keys(match.cluster_id, doc_id, sample, src, slots)
        if bands is not None:
            self._index_slot(slot, sample, bands)

    def _append(self, doc_id: str, fp: Fingerprint, match: DedupMatch, source: str | None, src: int, seen: int
                ) -> np.ndarray:
        """A document's row of the index's columns and its id and content hash looked up; its sampled keys."""
        slot = len(self._ids)
        sample = np.asarray(fp.sample, dtype=np.uint64)
        self._ids.append(doc_id)
        self._cluster.append(match.cluster_id)
        self._hash.append(fp.content_hash)
        self._source.append(source)
        self._src.append(src)
        self._seen.append(seen)
        self._ntok.append(int(fp.n_tokens))
        self._mh.append(np.asarray(fp.minhash, dtype=np.uint32))
        self._sample.append(sample)
        # a document starting its cluster is told by its id (see _existing): no object kept per document
        self._match.append(None if match.duplicate_of is None and match.cluster_id == doc_id else match)
        self._by_id.add(doc_id, slot)
        if fp.n_tokens:
            self._by_hash.add(fp.content_hash, slot)
        return sample

    def _count_cluster_keys(self, cluster_id: str, doc_id: str, sample: np.ndarray, src: int,
                            slots: tuple[np.ndarray, np.ndarray] | None = None) -> None:
        """Count the keys this document brings to its cluster (the sketch counts clusters per key). `slots`:
        `_sketch_slots(sample, src)` when the caller has them."""
        if cluster_id == doc_id:
            if sample.size:  # all its keys, with its source's keys in one addition (the counts are the same)
                self._sketch.add_slots(slots if slots is not None else self._sketch_slots(sample, src))
            return
        have = self._union.get(cluster_id)
        if have is None:
            root = self._by_id.get(cluster_id)
            have = np.sort(self._sample[root]) if root is not None else np.zeros(0, dtype=np.uint64)
        novel = sample[~np.isin(sample, have)]
        self._union[cluster_id] = np.union1d(have, novel)
        if novel.size:
            self._sketch.add_slots(self._sketch_slots(novel, src))

    def _index_slot(self, slot: int, sample: np.ndarray, bands: np.ndarray) -> None:
        self._post.add(slot, _posted(sample, self.tuning.posted_keys))
        self._lsh.add(slot, bands)
        if not self._absorb_later and (self._post.outgrown() or self._lsh.outgrown()):  # as _build_postings, cheaper
            self._post.absorb()
            self._lsh.absorb()

    def _build_postings(self) -> None:
        self._post.clear()  # before the new entries are gathered: the old and the new base never coexist
        self._lsh.clear()
        min_words = int(self.settings.min_words)
        near = [i for i in range(len(self._ids)) if self._ntok[i] >= min_words and self._sample.size(i)]
        if not near:
            self._post.build(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64))
            self._lsh.build(np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64))
            return
        lens = self._sample.sizes(near)
        slots = np.array(near, dtype=np.int32)
        k = self.tuning.posted_keys
        ranges = [(lo, min(len(near), lo + _BUILD_DOCS)) for lo in range(0, len(near), _BUILD_DOCS)]

        def posted() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            """Each document's `_posted` keys, a few thousand documents at a time (bounded temporaries)."""
            for lo, hi in ranges:
                keys = self._sample.concat(near[lo:hi])
                owners = np.repeat(slots[lo:hi], lens[lo:hi])
                if k and (lens[lo:hi] > k).any():
                    keep = _posted_mask(keys, lens[lo:hi], k)
                    keys, owners = keys[keep], owners[keep]
                yield keys, owners

        def bands() -> Iterator[tuple[np.ndarray, np.ndarray]]:
            for lo, hi in ranges:
                yield (self._band_keys(self._mh.concat(near[lo:hi]).reshape(hi - lo, self._num_perm)),
                       np.repeat(slots[lo:hi], self._bands))

        self._post.build_parts(posted())
        self._lsh.build_parts(bands())

    def _compact(self, keep: list[int]) -> None:
        """Rebuild every structure from the documents at ``keep`` (prune, load)."""
        cols = (self._ids, self._cluster, self._hash, self._source, self._src, self._seen, self._ntok, self._mh,
                self._sample, self._match)  # fmt: skip
        kept = [col.take(keep) if isinstance(col, ArrayStore | HexColumn) else
                array.array(col.typecode, [col[i] for i in keep]) if isinstance(col, array.array) else
                [col[i] for i in keep] for col in cols]  # fmt: skip
        multi = {new for new, old in enumerate(keep) if old in self._multi}
        self._mh.close()
        self._sample.close()
        self._post.clear()  # their files too
        self._lsh.clear()
        self._reset()
        self._multi = multi
        (self._ids, self._cluster, self._hash, self._source, self._src, self._seen, self._ntok, self._mh,
         self._sample, self._match) = kept  # fmt: skip
        self._rebuild()

    def _rebuild(self) -> None:
        self._by_id = HexIndex(self._ids)
        self._by_id.build()
        self._by_hash = HexIndex(self._hash)
        self._by_hash.build(np.flatnonzero(np.frombuffer(self._ntok, dtype=np.int64)))  # documents with words
        self._build_postings()
        if not self._ids:
            return
        # clusters per key, counted once per cluster (and once per cluster and source): the documents a few
        # thousand at a time, a cluster's all in one batch (its keys are counted once), clusters in order
        cl, names = self._cluster_numbers()
        sizes = np.bincount(cl)
        by_cluster = np.argsort(cl, kind="stable")
        starts = np.flatnonzero(np.concatenate(([True], np.diff(cl[by_cluster]) != 0)))  # each cluster's first
        all_lens = self._sample.sizes()
        all_src = np.array(self._src, dtype=np.uint64)
        lo = 0
        while lo < by_cluster.size:
            hi = int(starts[np.searchsorted(starts, lo + _BUILD_DOCS)]) if lo + _BUILD_DOCS < starts[-1] else by_cluster.size
            docs = by_cluster[lo:hi]
            lo = hi
            lens = all_lens[docs]
            keys = self._sample.concat(docs.tolist())
            owner = np.repeat(docs, lens)
            entry_cl = cl[owner]
            order = np.lexsort((keys, entry_cl))
            ok, oc, oo = keys[order], entry_cl[order], owner[order]
            del keys, owner, entry_cl, order
            first = np.ones(ok.size, dtype=bool)
            first[1:] = (ok[1:] != ok[:-1]) | (oc[1:] != oc[:-1])
            self._sketch.add(ok[first])
            src = all_src[oo]
            with_src = np.flatnonzero(src != 0)
            if with_src.size:
                sk = _fmix64(ok[with_src] ^ src[with_src])
                skey = np.lexsort((sk, oc[with_src]))
                sk, sc = sk[skey], oc[with_src][skey]
                f = np.ones(sk.size, dtype=bool)
                f[1:] = (sk[1:] != sk[:-1]) | (sc[1:] != sc[:-1])
                self._sketch.add(sk[f])
            # sorted key unions of clusters with several members
            multi = sizes[oc] > 1
            uk, uc = ok[first & multi], oc[first & multi]
            bounds = np.flatnonzero(np.diff(uc)) + 1
            for part_k, part_c in zip(np.split(uk, bounds), np.split(uc, bounds), strict=True):
                if part_k.size:
                    self._union[names(int(part_c[0]))] = part_k

    def _cluster_numbers(self) -> tuple[np.ndarray, Any]:
        """(each document's cluster as a number 0..k-1, the cluster id of a number)."""
        clusters = self._cluster
        if not clusters.all_hex:  # a cluster id that is no 16-hex-digit id: numbered by its string
            cluster_no: dict[str, int] = {}
            cl = np.array([cluster_no.setdefault(c, len(cluster_no)) for c in clusters], dtype=np.int64)
            return cl, list(cluster_no).__getitem__
        uniq, cl = np.unique(clusters.prefixes(), return_inverse=True)
        return cl.astype(np.int64), lambda k: f"{int(uniq[k]):016x}"

    # ---------------------------------------------------------------- persistence

    def _meta(self) -> dict[str, Any]:
        st = self.settings
        return {
            "version": 1,
            "shingle_size": int(st.shingle_size),
            "num_perm": int(st.num_perm),
            "sample_mod": int(st.sample_mod),
        }

    def to_arrow(self, doc_ids: Iterable[str] | None = None) -> pa.Table:
        """The window as a table: doc_id, cluster_id, content_hash, source, seen_at (timestamp[us, UTC]),
        n_tokens, minhash (little-endian uint32 bytes), sample (little-endian uint64 bytes, text order).

        ``doc_ids``: only the rows of these documents (those in the window), in window order: a commit's
        new entries without building a table of the whole window first."""
        import pyarrow as pa

        if doc_ids is None:
            slots: Sequence[int] = range(len(self._ids))
        else:
            found = (self._by_id.get(d) for d in doc_ids)
            slots = sorted({slot for slot in found if slot is not None})

        def col(values: Sequence) -> list:
            return list(values) if doc_ids is None else [values[i] for i in slots]

        n = len(slots)
        # one copy of the window's arrays, handed to Arrow as they are (no .tobytes() copy): the index is
        # still alive here, so each copy adds to the commit's peak memory
        chosen = None if doc_ids is None else slots
        mh = self._mh.concat(chosen).astype("<u4", copy=False).reshape(n, self._num_perm)
        lens = self._sample.sizes(chosen)
        keys = self._sample.concat(chosen).astype("<u8", copy=False)
        offsets = np.concatenate(([0], np.cumsum(lens * 8))).astype(np.int64)
        mh_offsets = np.arange(n + 1, dtype=np.int64) * (4 * self._num_perm)
        schema = pa.schema(
            [
                ("doc_id", pa.string()),
                ("cluster_id", pa.string()),
                ("content_hash", pa.string()),
                ("source", pa.string()),
                ("seen_at", pa.timestamp("us", tz="UTC")),
                ("n_tokens", pa.int32()),
                ("minhash", pa.large_binary()),
                ("sample", pa.large_binary()),
            ],
            metadata={"newsingest.dedup": json.dumps(self._meta())},
        )
        columns = [
            pa.array(col(self._ids), pa.string()),
            pa.array(col(self._cluster), pa.string()),
            pa.array(col(self._hash), pa.string()),
            pa.array(col(self._source), pa.string()),
            pa.array(np.array(col(self._seen), dtype=np.int64), pa.int64()).cast(pa.timestamp("us", tz="UTC")),
            pa.array(np.array(col(self._ntok), dtype=np.int32), pa.int32()),
            pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(mh_offsets), pa.py_buffer(mh.reshape(-1))]),
            pa.Array.from_buffers(pa.large_binary(), n, [None, pa.py_buffer(offsets), pa.py_buffer(keys)]),
        ]
        return pa.Table.from_arrays(columns, schema=schema)

    @classmethod
    def from_arrow(
        cls,
        table: pa.Table | Iterable[pa.Table] | None,
        settings: DedupSettings | None = None,
        *,
        tuning: DedupTuning | None = None,
        since: datetime | None = None,
        spill_to: str | os.PathLike[str] | None = None,
    ) -> DedupIndex:
        """Load a table written by :meth:`to_arrow` (or several, concatenated or one after the other; None
        gives an empty index).

        Rows seen before ``since`` are skipped. Raises ValueError when the table was built with another
        shingle size, MinHash size or sample rate. ``spill_to``: a directory for the documents' MinHash
        values and sampled keys (see `ArrayStore`) and the postings (see `_Postings`), which are then not
        kept in memory: given the tables one at a time, a load holds one table and a few thousand
        documents' keys at once, not the window's.
        """
        index = cls(settings, tuning=tuning, spill_to=spill_to)
        if table is None:
            return index
        import pyarrow as pa

        names: dict[str | None, tuple[str | None, int]] = {}  # one string (and key) per source, not per row
        for part in [table] if isinstance(table, pa.Table) else table:
            index._extend_arrow(part, since, names)
        index._rebuild()
        return index

    def _extend_arrow(self, table: pa.Table, since: datetime | None,
                      names: dict[str | None, tuple[str | None, int]]) -> None:
        """Append a `to_arrow` table's documents (seen from `since` on), before `_rebuild`."""
        import pyarrow as pa
        import pyarrow.compute as pc

        meta_raw = (table.schema.metadata or {}).get(b"newsingest.dedup")
        if meta_raw is not None:
            meta = json.loads(meta_raw)
            want = self._meta()
            for key in ("shingle_size", "num_perm", "sample_mod"):
                if key in meta and meta[key] != want[key]:
                    raise ValueError(
                        f"dedup index was built with {key}={meta[key]}, the settings say {want[key]}: rebuild it"
                    )
        if since is not None:
            table = table.filter(pc.greater_equal(table["seen_at"], pa.scalar(since, pa.timestamp("us", tz="UTC"))))
        n = table.num_rows
        mh = _binary_column(table["minhash"], "<u4")
        if any(a.size != self._num_perm for a in mh):
            raise ValueError(f"dedup index rows do not hold {self._num_perm} MinHash values")
        self._ids.extend_arrow(table["doc_id"])
        self._cluster.extend_arrow(table["cluster_id"])
        self._hash.extend_arrow(table["content_hash"])
        sources = table["source"].to_pylist()
        for s in set(sources).difference(names):
            names[s] = (s, _source_key(s))
        self._source.extend(names[s][0] for s in sources)
        self._src.extend(names[s][1] for s in sources)
        del sources
        self._seen.frombytes(table["seen_at"].cast(pa.int64()).to_numpy(zero_copy_only=False).tobytes())
        self._ntok.frombytes(table["n_tokens"].cast(pa.int64()).to_numpy(zero_copy_only=False).tobytes())
        self._mh.extend(mh)
        del mh
        self._sample.extend(_binary_column(table["sample"], "<u8"))
        self._match.extend([None] * n)


def _binary_column(column: Any, dtype: str) -> list[np.ndarray]:
    """Split a (large_)binary column of packed numbers into one array per row, without a Python loop per value."""
    import pyarrow as pa

    arr = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type):
        arr = arr.cast(pa.large_binary())
    else:
        raise ValueError(f"expected a binary column, got {arr.type}")
    n = len(arr)
    bufs = arr.buffers()
    offsets = np.frombuffer(bufs[1], dtype=np.int64)[arr.offset : arr.offset + n + 1]
    data = np.frombuffer(bufs[2], dtype=np.uint8) if bufs[2] is not None else np.zeros(0, dtype=np.uint8)
    size = np.dtype(dtype).itemsize
    values = np.frombuffer(data[offsets[0] : offsets[-1]].tobytes(), dtype=dtype)
    bounds = (offsets - offsets[0]) // size
    return [values[bounds[i] : bounds[i + 1]] for i in range(n)]


def _pair_code(doc: np.ndarray, key: np.ndarray) -> np.ndarray:
    """(document, shingle) as one nonzero uint64: document in bits 40-62, 40 bits of the shingle below."""
    code = doc.astype(np.uint64)
    code <<= _U64(40)
    code |= key >> _U64(24)
    code |= _U64(1 << 63)
    return code


def _distinct_per_group(group: np.ndarray, value: np.ndarray, n_values: int) -> np.ndarray:
    """Number of distinct values in each group (groups are 0..max, values 0..n_values-1)."""
    if group.size == 0:
        return np.zeros(0, dtype=np.int64)
    code = np.unique(group.astype(np.int64) * n_values + value)
    return np.bincount(code // n_values, minlength=int(group.max()) + 1)


# --------------------------------------------------------------------------------------------------
# stateless batch contract: newsingest dedup --jsonl


def _parse_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _ragged(starts: np.ndarray, lens: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Concatenated ranges [starts[i], starts[i] + lens[i]): (indices, owner, offset inside the range)."""
    total = int(lens.sum())
    owner = np.repeat(np.arange(lens.size), lens)
    before = np.cumsum(lens) - lens
    offset = np.arange(total) - before[owner]
    return starts[owner] + offset, owner, offset


_LO32 = _U64(0xFFFFFFFF)


def _or_positions(code: np.ndarray, lo: int = 0, hi: int | None = None) -> None:
    """code[i] |= i for i in [lo, hi) (default: all), in slices (no second array of the range's size)."""
    hi = code.size if hi is None else hi
    for a in range(lo, hi, 1 << 20):
        b = min(a + (1 << 20), hi)
        code[a:b] |= np.arange(a, b, dtype=np.uint64)


def _key_sorted(keys: np.ndarray, doc: np.ndarray, jit: Any, threads: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Entries sorted by key, stable (text order inside a key): their positions,
    their keys and their documents ``doc[order]`` (``np.argsort(keys, kind="stable")`` and two gathers).

    Sorts (high 32 bits of the key, position) packed into one uint64 with numpy's SIMD sort, then
    re-sorts the rare runs where distinct keys share their high 32 bits. Positions come as int64, or int32
    from the ``jit`` kernel, which reads the positions, keys and documents out in one pass (numpy's
    gathers are three passes of random reads, the slowest part of a million-document batch). With
    ``threads``, the packing and the kernel run on ranges of entries in threads.
    """
    if keys.size >= 1 << 32:  # pragma: no cover - beyond any batch this engine holds in memory
        order = np.argsort(keys, kind="stable")
        return order, keys[order], doc[order]
    m = keys.size
    ranges = _split(m, threads)
    code = np.empty(m, dtype=np.uint64)

    def pack(lo: int, hi: int) -> None:
        np.bitwise_and(keys[lo:hi], ~_LO32, out=code[lo:hi])
        _or_positions(code, lo, hi)

    _each_range(pack, ranges)
    code.sort()
    ds = None
    if jit is not None:
        order, ks, ds = np.empty(m, np.int32), np.empty(m, np.uint64), np.empty(m, np.int32)
        _each_range(lambda lo, hi: jit.sorted_entries(code[lo:hi], keys, doc, order[lo:hi], ks[lo:hi], ds[lo:hi]),
                    ranges)  # fmt: skip
        del code
    else:
        code &= _LO32
        order = code.view(np.int64)
        ks = keys[order]
    mixed = []
    for lo in range(0, ks.size - 1, 1 << 20):  # adjacent distinct keys with equal high bits (in slices)
        hi = min(lo + (1 << 20), ks.size - 1)
        step = ks[lo + 1 : hi + 1] ^ ks[lo:hi]
        mixed.append(np.flatnonzero((step != 0) & (step <= _LO32)) + lo)
    mixed = np.concatenate(mixed) if mixed else np.zeros(0, dtype=np.int64)
    if mixed.size:  # whole runs of equal high bits holding several keys, sorted by (key, position)
        # (ks is sorted by its high bits: a run spans the keys between hi << 32 and hi << 32 | 0xFFFFFFFF)
        hi = np.unique(ks[mixed] & ~_LO32)
        run_start = np.searchsorted(ks, hi, side="left")
        run_end = np.searchsorted(ks, hi | _LO32, side="right")
        idx, _, _ = _ragged(run_start, run_end - run_start)
        sub = order[idx]
        o = np.lexsort((sub, ks[idx]))
        order[idx], ks[idx] = sub[o], ks[idx][o]
        if ds is not None:
            ds[idx] = doc[order[idx]]
    if ds is None:
        ds = doc[order]
    return order, ks, ds


def _stable_argsort_small(values: np.ndarray) -> np.ndarray:
    """``np.argsort(values, kind="stable")`` for integers in [0, 2**31) (fewer than 2**32 of them)."""
    if values.size >= 1 << 32:  # pragma: no cover
        return np.argsort(values, kind="stable")
    code = values.astype(np.uint64)
    code <<= _U64(32)
    _or_positions(code)
    code.sort()
    code &= _LO32
    return code.view(np.int64)


class _Batch:
    """All documents of a batch at once: candidate pairs and their statistics computed with numpy."""

    def __init__(
        self,
        entries: dict,
        n_tokens: np.ndarray,
        times: np.ndarray,
        srcs: list[int],
        settings: Any,
        tu: DedupTuning,
        jit: Any = None,
    ):
        """``entries``: the fingerprints' sampled keys and their documents (``_Flat.keys``, ``_Flat.doc``)
        as {"keys", "doc"}, popped from the dict so that each is freed as soon as it is used. ``jit``: the
        compiled kernels (:func:`_jit_kernels`) or None for numpy only (same results)."""
        self.st, self.tu, self.jit = settings, tu, jit
        self.threads = batch_threads(settings)
        n = self.n = n_tokens.size
        keys = entries.pop("keys")
        # int32 positions and document numbers: half the memory of the default int64
        doc = entries.pop("doc").astype(np.int32, copy=False)
        # entries sorted by key, text order inside a key (with their documents: ds); a key repeated inside
        # one text is kept once
        order, ks, ds = _key_sorted(keys, doc, jit, self.threads)
        del keys
        order = order.astype(np.int32, copy=False)
        # each text's entries are contiguous (doc is sorted): where they start, and which texts have any
        self.d_start = np.searchsorted(doc, np.arange(n + 1)).astype(np.int64)
        self.has_entries = self.d_start[1:] > self.d_start[:-1]
        self.eligible = (n_tokens >= int(settings.min_words)) & self.has_entries
        # the kernel computes ds, repeat, gid_sorted, dk_order and dk below, and raw_pairs' inputs
        layout = self._layout(jit, order, ks, ds) if jit is not None else None
        # A repeat is masked rather than removed (removing it renumbers every array): `repeat` in key
        # order, `first` in text order. Repeats join no pair, are never informative and do not count.
        if layout is None:
            self.repeat = np.zeros(ks.size, dtype=bool)
            self.repeat[1:] = (ks[1:] == ks[:-1]) & (ds[1:] == ds[:-1])
        else:
            self.repeat = layout[0]
        self.first: np.ndarray | None = None
        if self.repeat.any():
            self.first = np.ones(doc.size, dtype=bool)
            self.first[order[self.repeat]] = False
        # D: document of each entry (text order); order: entries sorted by key; Ds: their documents
        self.D, self.Ds, self.order = doc, ds, order
        del doc, order
        self.times = times
        self.window = int(settings.window_days) * 86_400_000_000
        if layout is None:
            new = np.ones(ks.size, dtype=bool)
            new[1:] = ks[1:] != ks[:-1]
            self.gid_sorted = np.cumsum(new, dtype=np.int32)  # group (distinct key) of each sorted entry
            self.gid_sorted -= 1
            del new
        else:
            self.gid_sorted = layout[1]
        self.n_groups = int(self.gid_sorted[-1]) + 1 if ks.size else 0
        self.src_idx = self._source_index(srcs)
        # entries by (document, key): what `pairs` looks keys up in, sorted once for both passes (a stable
        # sort of the key-sorted entries by document); codes as _pair_code's, built in place
        if layout is not None:
            self.dk_order, self.dk = layout[2], layout[3]
            self.pairing = layout[4:]  # raw_pairs' kernel walks the entries by document
            del layout, ks
            return
        self.pairing = None
        by_doc = _stable_argsort_small(ds)
        if self.first is not None:
            by_doc = by_doc[~self.repeat[by_doc]]
        self.dk_order = self.order[by_doc]
        self.dk = np.empty(by_doc.size, dtype=np.uint64)
        step = 1 << 18
        for lo in range(0, by_doc.size, step):  # in slices: small temporaries
            b = by_doc[lo : lo + step]
            code = ds[b].astype(np.uint64)
            code <<= _U64(40)
            code |= ks[b] >> _U64(24)
            code |= _U64(1 << 63)
            self.dk[lo : lo + step] = code
        del by_doc, ks

    def _layout(self, jit: Any, order: np.ndarray, ks: np.ndarray, ds: np.ndarray) -> tuple[np.ndarray, ...]:
        """repeat, gid_sorted, dk_order, dk as the numpy code of ``__init__`` makes them, and raw_pairs'
        inputs, by the kernels (into arrays allocated here: numpy gives big arrays huge pages)."""
        m, n, t = order.size, self.n, self.threads
        repeat = _empty(m, bool, t)
        gid, info = _empty(m, np.int32, t), _empty(m, np.int64, t)
        ud, start = _empty(m, np.int32, t), np.zeros(n + 1, dtype=np.int64)
        u = jit.batch_layout(ks, ds, self.eligible, min(int(self.tu.posting_cap), 255), repeat, gid, info, ud, start)
        nb = int(start[n])
        dk_order, dk, info_bd = _empty(nb, np.int32, t), _empty(nb, np.uint64, t), _empty(nb, np.int64, t)
        jit.batch_by_doc(order, ks, ds, repeat, info, start, dk_order, dk, info_bd)
        return repeat, gid, dk_order, dk, info_bd, ud[:u]

    @staticmethod
    def _source_index(srcs: list[int]) -> np.ndarray | None:
        if not any(srcs):
            return None
        ids: dict[int, int] = {}
        return np.array([ids.setdefault(s, len(ids)) if s else -1 for s in srcs], dtype=np.int64)

    def _per_text_sum(self, mask: np.ndarray) -> np.ndarray:
        """Number of each text's entries where ``mask`` holds (0 for a text without entries)."""
        out = np.zeros(self.n, dtype=np.int64)
        if mask.size:
            at = np.flatnonzero(self.has_entries)
            out[at] = np.add.reduceat(mask, self.d_start[at], dtype=np.int64)
        return out

    def entry_values(self, per_sorted: np.ndarray) -> np.ndarray:
        out = np.empty(self.D.size, dtype=per_sorted.dtype)
        out[self.order] = per_sorted
        return out

    def template_by_clusters(self, root: np.ndarray) -> np.ndarray:
        """Keys used by many clusters, or by several clusters of one source (the index's definition)."""
        st, n = self.st, self.n
        size = None  # holders of each entry's key
        if self.jit is None or self.src_idx is not None:
            size = np.bincount(self.gid_sorted, minlength=self.n_groups)[self.gid_sorted]
        if self.jit is not None:
            freq = np.zeros(self.D.size, dtype=bool)
            self.jit.clusters_per_key(self.gid_sorted, self.Ds, root, int(st.template_clusters), freq)
        else:
            freq = np.zeros(self.D.size, dtype=bool)
            # only keys held by enough documents can be held by enough clusters
            big = np.flatnonzero(size >= int(st.template_clusters))
            if big.size:
                gid = self.gid_sorted[big]
                distinct = _distinct_per_group(gid, root[self.Ds[big]], n)
                freq[big] = distinct[gid] >= int(st.template_clusters)
        if self.src_idx is not None:
            has = np.flatnonzero(size >= int(st.source_template_clusters))
            src = self.src_idx[self.Ds[has]]
            has = has[src >= 0]
            src = src[src >= 0]
            cl = root[self.Ds[has]]
            _, grp = np.unique(self.gid_sorted[has].astype(np.int64) * (int(self.src_idx.max()) + 1) + src,
                               return_inverse=True)
            per_src = _distinct_per_group(grp, cl, n)
            freq[has] |= per_src[grp] >= int(st.source_template_clusters)
        return self.entry_values(freq)

    def raw_pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Candidate pairs (i later than j) and how many sampled shingles they share, template or not.

        Each holder of a shingle is paired with the first ``posting_cap`` earlier holders (as the index's
        capped postings do), so a shingle used by thousands of pages costs a few pairs per page. The pairs
        are counted in blocks of later documents, which bounds the temporary arrays.
        """
        n = self.n
        if self.pairing is not None and self.tu.posting_cap < 256:
            (info, ud), self.pairing = self.pairing, None
            # ranges of whole documents, each with its own scratch counters (a document's pairs in one range)
            parts = _each_range(lambda lo, hi: self.jit.raw_pairs(info[lo:hi], ud, self.dk[lo:hi],
                                                                  np.zeros(n, dtype=np.int32), np.empty(n, dtype=np.int32)),
                                self._document_ranges())  # fmt: skip
            if len(parts) == 1:
                return parts[0]
            return tuple(np.concatenate([p[k] for p in parts]) for k in range(3))
        use = self.eligible[self.Ds]
        use &= ~self.repeat
        g = self.gid_sorted[use]
        do = self.Ds[use]
        del use
        new = np.ones(g.size, dtype=bool)
        new[1:] = g[1:] != g[:-1]
        del g
        rank = np.arange(new.size, dtype=np.int32)
        gs = np.maximum.accumulate(np.where(new, rank, 0))  # first entry of the key
        rank -= gs  # position among the key's holders (doc order)
        later = np.flatnonzero(rank > 0)
        later = later[_stable_argsort_small(do[later])]
        empty = np.zeros(0, dtype=np.int64)
        if later.size == 0:
            return empty, empty, empty
        # blocks of entries that never split one later document's entries
        later_doc = do[later]
        step = max(1, self._BLOCK // self.tu.posting_cap)  # each entry makes up to posting_cap pairs
        cuts = np.unique(np.searchsorted(later_doc, later_doc[::step], side="left"))
        cuts = np.append(cuts, later.size)
        out_i, out_j, out_c = [], [], []
        for a, b in zip(cuts[:-1].tolist(), cuts[1:].tolist(), strict=True):
            e = later[a:b]
            re, ge = rank[e], gs[e]  # gathered once per block, then narrowed in order
            de = do[e].astype(np.int64)
            de *= n
            codes = []
            for r in range(1, self.tu.posting_cap + 1):
                if r > 1:
                    k = re >= r
                    if not k.any():
                        break
                    re, ge, de = re[k], ge[k], de[k]
                codes.append(de + do[ge + (r - 1)])
            code = np.sort(np.concatenate(codes))
            head = np.ones(code.size, dtype=bool)
            head[1:] = code[1:] != code[:-1]
            at = np.flatnonzero(head)
            out_c.append(np.diff(np.append(at, code.size)))
            code = code[at]
            out_i.append(code // n)
            out_j.append(code % n)
        return np.concatenate(out_i), np.concatenate(out_j), np.concatenate(out_c)

    def _document_ranges(self) -> list[tuple[int, int]]:
        """``_split`` of the entries in document order (``dk``), each cut moved back to its document's first
        entry (``dk`` is sorted by its document bits, 40 and up)."""
        ranges = _split(self.dk.size, self.threads)
        cuts = [0] + [int(np.searchsorted(self.dk, (self.dk[lo] >> _U64(40)) << _U64(40))) for lo, _ in ranges[1:]]
        return list(zip(cuts, cuts[1:] + [self.dk.size], strict=True))

    _BLOCK = 1 << 19  # entries (raw_pairs) or part pairs (composite) handled at once: bounds temporaries
    _LOOKUP_BLOCK = 1 << 17  # looked-up keys (pairs) at once: a narrower part of the table to search

    def pairs(self, raw: tuple[np.ndarray, np.ndarray, np.ndarray], template: np.ndarray) -> dict[str, np.ndarray]:
        """Verdicts for the candidate pairs worth verifying, on informative (non-template) shingles."""
        tu = self.tu
        inf = ~template & self.eligible[self.D]
        if self.first is not None:
            inf &= self.first
        n_inf = self._per_text_sum(inf)
        i, j, cnt = raw
        # shared shingles (template ones included) can only overstate the informative overlap
        need = np.maximum(2, (0.5 * float(self.st.min_containment) * np.minimum(n_inf[i], n_inf[j])).astype(np.int64))
        keep = (cnt >= need) & (np.abs(self.times[i] - self.times[j]) <= self.window)
        keep &= (n_inf[i] > 0) & (n_inf[j] > 0)
        i, j = i[keep], j[keep]
        empty = np.zeros(0, dtype=np.int64)
        if i.size == 0:
            return {"i": empty, "j": empty}
        # exact statistics: look the shorter text's informative keys up in the longer one. The table is
        # every informative (document, key) code, sorted, with the key's rank among its text's informative
        # keys (where the shared part starts and ends in the longer text).
        t_start = np.cumsum(n_inf) - n_inf  # informative entries before each text (its block in the table)
        if self.jit is not None:
            total = int(n_inf.sum())
            table, t_rank = np.empty(total, dtype=np.uint64), np.empty(total, dtype=np.int32)
            self.jit.informative_table(inf, self.dk_order, self.dk, t_start, np.empty(inf.size, dtype=np.int32),
                                       table, t_rank)  # fmt: skip
        else:
            sel = inf[self.dk_order]
            table = self.dk[sel]
            ent = self.dk_order[sel]
            del sel
            t_rank = np.cumsum(inf, dtype=np.int32)[ent]
            t_rank -= np.repeat((t_start + 1).astype(np.int32), n_inf)  # the table is in text order
            del ent
        i_longer = n_inf[i] >= n_inf[j]
        longer = np.where(i_longer, i, j)
        shorter = np.where(i_longer, j, i)
        # Pairs are looked up ordered by the longer text, and each shorter text's keys in table order (the
        # statistics do not depend on the order): the queries then come sorted, which numpy's binary search
        # turns into cache-friendly neighbouring searches (3x faster than queries in text order).
        by_longer = _stable_argsort_small(longer)
        if self.jit is not None:
            inter, first, last = np.empty(i.size), np.empty(i.size, dtype=np.int64), np.empty(i.size, dtype=np.int64)
            _each_range(lambda lo, hi: self.jit.pair_stats(table, t_rank, t_start, n_inf, longer, shorter,
                                                           by_longer[lo:hi], inter, first, last),
                        _split(by_longer.size, self.threads))  # fmt: skip (each pair is written once)
        else:
            inter, first, last = self._lookup(table, t_rank, t_start, n_inf, longer, shorter, by_longer)
        span = np.maximum(n_inf[longer], 1)
        ok, c, cov = _judge(n_inf[i], n_inf[j], inter, first / span, self.st, tu)
        return {
            "i": i, "j": j, "ok": ok, "c": c, "cov": cov, "i_longer": i_longer & (n_inf[i] > n_inf[j]),
            "first": first / span, "last": (last + 1) / span,
        }  # fmt: skip

    def _lookup(
        self, table: np.ndarray, t_rank: np.ndarray, t_start: np.ndarray, n_inf: np.ndarray, longer: np.ndarray,
        shorter: np.ndarray, by_longer: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For each pair, how many of the shorter text's informative keys the longer one has, and the first
        and last rank of those in the longer text (int32 max and -1 when none)."""
        size = longer.size
        longer_o, shorter_o = longer[by_longer], shorter[by_longer]
        low = _U64((1 << 40) - 1)
        sizes = n_inf[shorter_o]
        inter = np.zeros(size)
        first = np.zeros(size, dtype=np.int64)
        last = np.zeros(size, dtype=np.int64)
        ends = np.cumsum(sizes)
        lo = 0
        top = _U64(1 << 63)
        while lo < size:  # pairs in chunks of about _LOOKUP_BLOCK looked-up keys
            stop = ends[lo] - sizes[lo] + self._LOOKUP_BLOCK
            hi = max(lo + 1, int(np.searchsorted(ends, stop, side="right")))
            sz = sizes[lo:hi]  # every shorter text has informative keys (pairs without were dropped)
            heads = np.cumsum(sz) - sz
            # the shorter text's keys (its block of the table), as codes of the longer text
            idx = np.repeat(t_start[shorter_o[lo:hi]] - heads, sz)
            idx += np.arange(idx.size)
            q = table[idx]
            del idx
            q &= low
            q |= np.repeat((longer_o[lo:hi].astype(np.uint64) << _U64(40)) | top, sz)
            # the pairs come sorted by the longer text: only its blocks of the table are searched
            t_lo = int(t_start[longer_o[lo]])
            t_hi = int(t_start[longer_o[hi - 1]] + n_inf[longer_o[hi - 1]])
            pos = np.searchsorted(table[t_lo:t_hi], q)
            pos += t_lo
            np.minimum(pos, table.size - 1, out=pos)
            found = table[pos] == q
            rank = t_rank[pos]
            at = by_longer[lo:hi]
            inter[at] = np.add.reduceat(found, heads, dtype=np.int64)
            first[at] = np.minimum.reduceat(np.where(found, rank, np.iinfo(np.int32).max), heads)
            last[at] = np.maximum.reduceat(np.where(found, rank, -1), heads)
            lo = hi
        return inter, first, last

    def composite(self, pairs: dict[str, np.ndarray]) -> np.ndarray:
        """Documents that hold two stories at different places (digests, live blogs, aggregator pages)."""
        out = np.zeros(self.n, dtype=bool)
        if pairs["i"].size == 0:
            return out
        tu = self.tu
        part = (pairs["c"] >= float(self.st.min_containment)) & (pairs["cov"] >= tu.composite_share)
        part &= pairs["cov"] < float(self.st.full_coverage)
        longer = np.where(pairs["i_longer"], pairs["i"], pairs["j"])[part]
        if longer.size < 2:
            return out
        first, last = pairs["first"][part], pairs["last"][part]
        o = np.argsort(longer, kind="stable")
        longer, first, last = longer[o], first[o], last[o]
        # every two parts of one longer text (as _is_composite, on arrays): a < b inside each run of `longer`
        run_end = np.append(np.flatnonzero(longer[1:] != longer[:-1]) + 1, longer.size)
        after = np.repeat(run_end, np.diff(np.append(0, run_end))) - np.arange(longer.size) - 1
        ends = np.cumsum(after)
        lo = 0
        while lo < longer.size:  # in blocks of about _BLOCK part pairs
            hi = max(lo + 1, int(np.searchsorted(ends, ends[lo] - after[lo] + self._BLOCK, side="right")))
            pb, owner, _ = _ragged(np.arange(lo + 1, hi + 1), after[lo:hi])
            pa_ = owner + lo
            fa, la, fb, lb = first[pa_], last[pa_], first[pb], last[pb]
            hit = np.minimum(la, lb) - np.maximum(fa, fb) < 0.5 * np.minimum(la - fa, lb - fb)
            out[longer[pa_[hit]]] = True
            lo = hi
        return out

    def _exact_links(self, hashes: list[str], ntok: list[int]) -> tuple[list[int], list[int]]:
        """(later, earlier) documents with equal content hashes inside the window (the same in both
        passes: computed once)."""
        cached = getattr(self, "_exact", None)
        if cached is not None and cached[0] is hashes:
            return cached[1], cached[2]
        ex_i: list[int] = []
        ex_j: list[int] = []
        times = self.times.tolist()
        by_hash: dict[str, int] = {}
        for i in range(self.n):
            if ntok[i]:
                j = by_hash.setdefault(hashes[i], i)
                if j != i:
                    if abs(times[i] - times[j]) <= self.window:
                        ex_i.append(i)
                        ex_j.append(j)
                    else:
                        by_hash[hashes[i]] = i
        self._exact = (hashes, ex_i, ex_j)
        return ex_i, ex_j

    def assign(
        self, pairs: dict[str, np.ndarray], hashes: list[str], ntok: list[int], url_first: list[int]
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Clusters = connected documents (same canonical URL, same content hash, accepted near pairs).

        Returns (first document of the cluster, the neighbour each document was matched to or -1, how:
        0 none, 1 url, 2 exact, 3 near). A document's neighbour is its best link: an earlier document
        before a later one, then url before exact before near, then the higher similarity, then the link
        listed first. A page holding several stories links to none of them through a partial match.
        """
        n = self.n
        uf = np.asarray(url_first, dtype=np.int64)
        ui = np.flatnonzero(uf >= 0)
        ex_i, ex_j = self._exact_links(hashes, ntok)
        empty = np.zeros(0, dtype=np.int64)
        ni, nj, ns = empty, empty, np.zeros(0)
        if pairs["i"].size:
            comp = self.composite(pairs)
            longer = np.where(pairs["i_longer"], pairs["i"], pairs["j"])
            keep = pairs["ok"] & ~(comp[longer] & (pairs["cov"] < float(self.st.full_coverage)))
            score = pairs["c"] + 0.25 * pairs["cov"]
            ni, nj, ns = pairs["i"][keep], pairs["j"][keep], score[keep]
        # the links in the order they are listed: url, exact, near (tier 2, 1, 0)
        li = np.concatenate([ui, np.array(ex_i, dtype=np.int64), ni.astype(np.int64)])
        lj = np.concatenate([uf[ui], np.array(ex_j, dtype=np.int64), nj.astype(np.int64)])
        tier = np.concatenate([np.full(ui.size, 2), np.full(len(ex_i), 1), np.zeros(ni.size, dtype=np.int64)])
        sim = np.concatenate([np.ones(ui.size + len(ex_i)), ns])
        root = _components(n, li, lj)
        # each link counts for both of its documents; per document, the best by (earlier, tier, sim, order)
        x, y = np.concatenate([li, lj]), np.concatenate([lj, li])
        seq = np.concatenate([2 * np.arange(li.size), 2 * np.arange(li.size) + 1])
        tier2, sim2 = np.concatenate([tier, tier]), np.concatenate([sim, sim])
        order = np.lexsort((seq, -sim2, -tier2, -(y < x).astype(np.int64), x))
        head = np.ones(order.size, dtype=bool)
        head[1:] = x[order][1:] != x[order][:-1]
        best = order[head]
        dup = np.full(n, -1, dtype=np.int64)
        method = np.zeros(n, dtype=np.int8)
        bx = x[best]
        linked = root[bx] != bx
        dup[bx[linked]] = y[best][linked]
        method[bx[linked]] = 3 - tier2[best][linked]
        return root, dup, method


JIT_MIN_DOCS = 50_000
"""Batches of at least this many documents use the compiled kernels of :mod:`pipeline._dedup_jit` when numba
is installed: importing numba and loading the cached kernels costs ~0.5 s, which the kernels win back from
about 40,000 documents on. Once they are loaded in the process (an earlier big batch, :func:`warm_jit`),
batches from ``JIT_LOADED_MIN_DOCS`` documents use them too. ``NEWSINGEST_DEDUP_JIT=0`` turns the kernels
off, ``=1`` uses them for every batch; the results are the same either way."""
JIT_LOADED_MIN_DOCS = 1_000


def _jit_kernels(n_docs: int) -> Any:
    """The compiled kernels for a batch of ``n_docs`` documents, or None (numpy only: same results)."""
    import os

    env = os.environ.get("NEWSINGEST_DEDUP_JIT", "")
    if env == "0":
        return None
    loaded = "pipeline._dedup_jit" in sys.modules
    if env != "1" and n_docs < (JIT_LOADED_MIN_DOCS if loaded else JIT_MIN_DOCS):
        return None
    try:
        from pipeline import _dedup_jit
    except ImportError:  # numba missing or unusable here: the numpy path computes the same
        return None
    return _dedup_jit


def warm_jit() -> float:
    """Import numba and load the compiled kernels (compiling them the first time on a machine, a few
    seconds, then cached on disk) by clustering a few generated texts with them; returns the seconds it
    took (0.0 when numba is missing or ``NEWSINGEST_DEDUP_JIT=0``). Benchmarks call it before their
    clock, as they import modules before it; the pipeline does not need to."""
    import os
    import time

    t0 = time.perf_counter()
    jit = None if os.environ.get("NEWSINGEST_DEDUP_JIT") == "0" else _jit_kernels(max(JIT_MIN_DOCS, 1))
    if jit is None:
        return 0.0
    rng = np.random.default_rng(1)
    words = [f"w{int(x)}" for x in rng.integers(0, 500, 120)]
    text = ". ".join(" ".join(words[i : i + 12]) for i in range(0, 120, 12)) + "."
    docs = [{"id": "a", "text": text}, {"id": "b", "text": text.replace(words[5], "other", 1)},
            {"id": "c", "text": text[: len(text) // 2]}, {"id": "d", "text": "U.S. shares rose 5 pct %"}]  # fmt: skip
    for _ in _dedup_items(docs, None, None, jit):
        pass
    return time.perf_counter() - t0


def _components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected components of n nodes and edges (a, b), each named after its smallest node.

    Hooking and pointer jumping: every round hooks each edge's larger root under the smaller one (so
    parents only ever decrease, no cycles) and then compresses every path; the smallest node of a
    component is its own parent, hence its root. A few rounds (about log2 of the longest chain).
    """
    parent = np.arange(n, dtype=np.int64)
    while a.size:
        ra, rb = parent[a], parent[b]
        cross = ra != rb
        if not cross.any():
            break
        a, b, ra, rb = a[cross], b[cross], ra[cross], rb[cross]
        np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))
        while True:
            up = parent[parent]
            if np.array_equal(up, parent):
                break
            parent = up
    return parent


def dedup_documents(
    docs: Iterable[dict], settings: DedupSettings | None = None, *, tuning: DedupTuning | None = None
) -> Iterator[dict]:
    """Cluster a batch of ``{id, text, url?, published_at?, source?}`` dicts (the stateless CLI contract).

    Yields ``{id, cluster, duplicate_of}`` per document, in input order. Documents are linked by an
    equal canonical URL, an equal :func:`content_hash` or an accepted near-duplicate pair (the rules
    of :class:`DedupIndex`); a cluster is a set of linked documents and is named after its first
    document in input order. ``duplicate_of`` is the document's best link, an earlier one when it
    has one (URL before exact before near), None for the first document of a cluster.

    The batch is clustered twice: the first pass only learns which shingles are template text in
    this batch (used by ``template_clusters`` of its clusters, or ``source_template_clusters`` of one
    source's), the second clusters with that knowledge from the first document on. ``source``
    defaults to the URL's host; ``published_at`` (ISO 8601) places documents in time for
    ``window_days`` (a document without one takes the previous document's time, or now).
    """
    items = list(docs)
    yield from _dedup_items(items, settings, tuning, _jit_kernels(len(items)))


KEEP_FREED_MIN_DOCS = 10_000
"""Batches of at least this many documents keep freed memory in the process while they compute
(:func:`pipeline._malloc.keep_freed_memory`): their big temporary arrays then reuse each other's pages."""


def _dedup_items(items: list[dict], settings: Any, tuning: DedupTuning | None, jit: Any) -> Iterator[dict]:
    """:func:`dedup_documents` with the kernels chosen by the caller (None: numpy only, same results)."""
    if not items:
        return
    try:
        ids = [d["id"] for d in items]
    except KeyError:
        raise ValueError("every document needs an 'id'") from None
    if len(items) >= KEEP_FREED_MIN_DOCS:
        from pipeline._malloc import keep_freed_memory

        with keep_freed_memory():
            root, dup = _cluster_items(items, settings, tuning, jit)
    else:
        root, dup = _cluster_items(items, settings, tuning, jit)
    for i, doc_id in enumerate(ids):
        j = dup[i]
        yield {"id": doc_id, "cluster": ids[root[i]], "duplicate_of": ids[j] if j >= 0 else None}


def _cluster_items(items: list[dict], settings: Any, tuning: DedupTuning | None, jit: Any) -> tuple[list, list]:
    """Each document's cluster (its first document's number) and best link (a number or -1)."""
    from pipeline.urls import canonicalize_url, host_of

    st = settings if settings is not None else _DefaultSettings()
    tu = tuning if tuning is not None else DedupTuning()
    flat = _fingerprint_chunks([str(d.get("text") or "") for d in items], st, int(st.sample_mod), minhash=False,
                               jit=jit, threads=batch_threads(st))  # fmt: skip
    hashes, n_tokens = flat.hashes, flat.n_tokens
    entries = {"keys": flat.keys, "doc": flat.doc}  # handed over to the batch, which frees them once used
    del flat
    times: list[int] = []
    srcs: list[int] = []
    url_first: list[int] = []
    by_url: dict[str, int] = {}
    last = _utc_us(None)  # documents without published_at: now, or the previous document's time
    for i, d in enumerate(items):
        url = d.get("url")
        url = url if isinstance(url, str) and url.strip() else None
        source = d.get("source") or (host_of(url) if url else None)
        srcs.append(_source_key(str(source)) if source else 0)
        t = _parse_time(d.get("published_at"))
        if t is not None:
            last = _utc_us(t)
        times.append(last)
        j = by_url.setdefault(canonicalize_url(url), i) if url else i
        url_first.append(j if j != i else -1)
    batch = _Batch(entries, n_tokens, np.array(times, dtype=np.int64), srcs, st, tu, jit)
    ntok = n_tokens.tolist()
    raw = batch.raw_pairs()
    no_template = np.zeros(batch.D.size, dtype=bool)
    first_root, _, _ = batch.assign(batch.pairs(raw, no_template), hashes, ntok, url_first)
    template = batch.template_by_clusters(first_root)
    root_a, dup_a, _ = batch.assign(batch.pairs(raw, template), hashes, ntok, url_first)
    return root_a.tolist(), dup_a.tolist()


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pipeline.dedup``: JSONL documents on stdin, JSONL ``{id, cluster, duplicate_of}`` on stdout."""
    if argv is None:
        argv = sys.argv[1:]
    if argv:
        print(main.__doc__, file=sys.stderr)
        return 0 if argv[0] in ("-h", "--help") else 2
    docs = []
    for n, line in enumerate(sys.stdin.buffer, 1):
        if line.strip():
            try:
                doc = json.loads(line)
            except ValueError as exc:
                print(f"stdin line {n}: not JSON ({exc})", file=sys.stderr)
                return 2
            if not isinstance(doc, dict) or "id" not in doc:
                print(f"stdin line {n}: expected an object with an 'id'", file=sys.stderr)
                return 2
            docs.append(doc)
    dumps = json.dumps
    sys.stdout.write("".join(dumps(r, ensure_ascii=False, default=str) + "\n" for r in dedup_documents(docs)))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
