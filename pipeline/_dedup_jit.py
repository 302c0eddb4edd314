"""Compiled (numba) kernels of :mod:`pipeline.dedup`'s batch engine, for big batches.

Each kernel computes exactly what the numpy code it replaces computes (tests compare both paths on real
texts); :mod:`pipeline.dedup` imports this module only for batches of at least ``JIT_MIN_DOCS`` documents,
so a small run never pays for importing numba or loading the compiled code. Compiled code is cached on
disk (``cache=True``) under ``$NUMBA_CACHE_DIR``, which defaults here to ``numba`` in the newsingest cache
directory (``$NEWSINGEST_CACHE_DIR``, else ``$XDG_CACHE_HOME/newsingest`` or ``~/.cache/newsingest``): the
first process compiles (a few seconds), later ones load the machine code.
"""

from __future__ import annotations

import os
from pathlib import Path


def _cache_dir() -> Path:
    explicit = os.environ.get("NEWSINGEST_CACHE_DIR")
    if explicit:
        return Path(explicit)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "newsingest"


os.environ.setdefault("NUMBA_CACHE_DIR", str(_cache_dir() / "numba"))

import numpy as np  # noqa: E402
from numba import njit  # noqa: E402

_LOW40 = np.uint64((1 << 40) - 1)


@njit(cache=True, nogil=True)
def raw_pairs(info, ud, dk, cnt, touched):  # pragma: no cover - compiled
    """``_Batch.raw_pairs``: (later document, earlier document, shared sampled shingles), sorted.

    ``info``, ``dk``: :func:`batch_layout`'s pairing word and (document, key) code of the non-repeat entries
    in document order; ``ud``: the documents of the used holders of each key, in key order; ``cnt``
    (zeros) and ``touched``: scratch, one int32 per document.
    """
    nb = info.size
    size = max(1024, nb // 4)
    oi = np.empty(size, np.int64)
    oj = np.empty(size, np.int64)
    oc = np.empty(size, np.int64)
    k = 0
    x = 0
    doc_mask = np.uint64((1 << 23) - 1)
    shift = np.uint64(40)
    while x < nb:
        i = np.int64((dk[x] >> shift) & doc_mask)
        nt = 0
        while x < nb and np.int64((dk[x] >> shift) & doc_mask) == i:
            v = info[x]
            x += 1
            r = v & 255
            st = v >> 8
            for q in range(r):
                j = ud[st + q]
                if cnt[j] == 0:
                    touched[nt] = j
                    nt += 1
                cnt[j] += 1
        if nt:
            t = np.sort(touched[:nt])
            if k + nt > size:
                size = max(2 * size, k + nt)
                ni = np.empty(size, np.int64)
                nj = np.empty(size, np.int64)
                nc = np.empty(size, np.int64)
                ni[:k] = oi[:k]
                nj[:k] = oj[:k]
                nc[:k] = oc[:k]
                oi, oj, oc = ni, nj, nc
            for q in range(nt):
                j = t[q]
                oi[k] = i
                oj[k] = j
                oc[k] = cnt[j]
                cnt[j] = 0
                k += 1
    return oi[:k].copy(), oj[:k].copy(), oc[:k].copy()


@njit(cache=True, nogil=True)
def pair_stats(table, t_rank, t_start, n_inf, longer, shorter, order, inter, first, last):  # pragma: no cover
    """``_Batch.pairs``' lookups: for each pair, the shorter text's informative keys found in the longer
    text (``inter``) and the first and last rank in the longer text of the found ones (int32 max and -1 when
    none), as numpy's leftmost binary search over the longer text's block of ``table`` gives them; written
    into ``inter``, ``first`` and ``last``, for the pairs ``order`` lists (all of them, or a range of them)."""
    npairs = order.size
    low = _LOW40
    for z in range(npairs):
        p = order[z]
        a = t_start[shorter[p]]
        ae = a + n_inf[shorter[p]]
        lo = t_start[longer[p]]
        le = lo + n_inf[longer[p]]
        c = 0
        f = 2147483647
        la = -1
        if le - lo > 8 * (ae - a):  # a much longer text: binary searches
            for x in range(a, ae):
                q = table[x] & low
                hi = le
                while lo < hi:  # leftmost position >= q (queries come sorted: the search only moves right)
                    mid = (lo + hi) >> 1
                    if (table[mid] & low) < q:
                        lo = mid + 1
                    else:
                        hi = mid
                if lo < le and (table[lo] & low) == q:
                    c += 1
                    r = t_rank[lo]
                    f = min(f, r)
                    la = max(la, r)
        else:  # a merge of the two sorted blocks (the leftmost equal code of the longer text for each key)
            x = a
            while x < ae and lo < le:
                q = table[x] & low
                y = table[lo] & low
                if q == y:
                    c += 1
                    r = t_rank[lo]
                    f = min(f, r)
                    la = max(la, r)
                    x += 1
                elif q < y:
                    x += 1
                else:
                    lo += 1
        inter[p] = c
        first[p] = f
        last[p] = la


@njit(cache=True, inline="always")
def _fmix(x):  # pragma: no cover - compiled
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xFF51AFD7ED558CCD)
    x ^= x >> np.uint64(33)
    x *= np.uint64(0xC4CEB9FE1A85EC53)
    x ^= x >> np.uint64(33)
    return x


@njit(cache=True, inline="always")
def _le_word(arr, at, n, mask):  # pragma: no cover - compiled
    """The 8 bytes at ``at`` as a little-endian number (bytes past ``n`` read as zeros), ``& mask``."""
    w = np.uint64(0)
    if at + 8 <= n:  # eight loads, no data-dependent branch
        for b in range(8):
            w |= np.uint64(arr[at + b]) << np.uint64(8 * b)
    else:
        for b in range(n - at):
            w |= np.uint64(arr[at + b]) << np.uint64(8 * b)
    return w & mask


@njit(cache=True, inline="always")
def _boundary_at(arr, p, n, ws):  # pragma: no cover - compiled
    """Does the byte at p (one of _BOUNDARY_BYTE's) end a segment (``_segment_starts``' rules)?"""
    c = arr[p]
    nxt = arr[p + 1] if p + 1 < n else np.uint8(0)
    nxt2 = arr[p + 2] if p + 2 < n else np.uint8(0)
    ws_next = ws[nxt] or p + 1 >= n
    if c == 10 or c == 13 or c == 0 or c == 124:
        return True
    if (c == 46 or c == 33 or c == 63) and (
        ws_next or ((nxt == 34 or nxt == 39 or nxt == 41) and ws[nxt2]) or nxt == 0xE2
    ):
        return True
    return p > 0 and arr[p - 1] == 32 and (
        (c == 45 and ws_next) or (c == 0xE2 and nxt == 0x80 and (nxt2 == 0x93 or nxt2 == 0x94))
    )


@njit(cache=True, nogil=True)
def fingerprint_keys(arr, cls, brk, n_docs, k, sample_mod, char_coef, shingle_coef, exact_coef, bigram_mul,
                     big_keys, big_values, big_shift, big_mask, syn_keys, syn_values, syn_shift, syn_mask,
                     boundary, ws):  # pragma: no cover - compiled
    """``_fingerprint_arrays`` without MinHash, from the folded bytes and their ``_scan`` classes: the
    content hashes' two words per text, the token count per text (after folding), and the sampled shingle
    hashes with their texts, in text order. One pass over the bytes (tokens, their hashes, the exact
    hashes and segment starts), one over the tokens (folding), one over the folded tokens (shingles)."""
    n = arr.size
    tok = np.empty(n + 1, np.uint64)  # at most one token per byte ("%%%")
    tdoc = np.empty(n + 1, np.int64)
    seg = np.empty(n + 1, np.bool_)
    exact = np.zeros((n_docs, 2), np.uint64)
    low_bytes = np.empty(9, np.uint64)  # the low i bytes of a word
    for i in range(8):
        low_bytes[i] = (np.uint64(1) << np.uint64(8 * i)) - np.uint64(1)
    low_bytes[8] = ~np.uint64(0)
    t = 0
    doc = 0
    wpos = 0  # word tokens so far in this text
    pending = False
    p = 0
    while p < n:
        cl = cls[p]
        if cl == 0 or cl == 3:  # between tokens
            if cl == 3:
                doc += 1
                wpos = 0
            if boundary[arr[p]] and _boundary_at(arr, p, n, ws):
                pending = True
            p += 1
            continue
        s = p  # a token: word bytes up to a non-word byte or a break
        seg[t] = pending or t == 0
        pending = False
        while True:
            if arr[p] == 0xE2 and _boundary_at(arr, p, n, ws):  # the only boundary byte inside words
                pending = True
            p += 1
            if p >= n or brk[p] or cls[p] == 0 or cls[p] == 3:
                break
        length = p - s
        h = _le_word(arr, s, n, low_bytes[min(length, 8)]) * char_coef[0]
        h += np.uint64(length) * char_coef[3]
        if length > 8:
            w1 = _le_word(arr, s + 8, n, low_bytes[min(length - 8, 8)]) * char_coef[1]
            if length > 16:
                w1 += _le_word(arr, p - 8, n, low_bytes[8]) * char_coef[2]
            h += w1
        h = _fmix(h)
        tok[t] = h
        tdoc[t] = doc
        if cls[s] == 1:
            pos = np.uint64(wpos)
            exact[doc, 0] += _fmix(h * exact_coef[0] + pos * exact_coef[1])
            exact[doc, 1] += _fmix(h * exact_coef[2] + pos * exact_coef[3])
            wpos += 1
        t += 1
    # two-word phrases to one token (inside a segment; in a run of phrases, the first only), then synonyms
    m = 0
    prev_hit = False
    q = 0
    slot = 0
    while q < t:
        hit = False
        if q + 1 < t and not seg[q + 1]:
            key = tok[q] * bigram_mul + tok[q + 1]
            slot = np.int64((key >> big_shift) & big_mask)
            hit = big_keys[slot] == key
        v = tok[q]
        d = tdoc[q]
        sg = seg[q]
        nq = q + 1
        if hit and not prev_hit:
            v = big_values[slot]
            # the phrase's second word goes; its own hit (as a first word) still blocks the next one
            nxt_hit = False
            if q + 2 < t and not seg[q + 2]:
                key2 = tok[q + 1] * bigram_mul + tok[q + 2]
                nxt_hit = big_keys[np.int64((key2 >> big_shift) & big_mask)] == key2
            prev_hit = nxt_hit
            nq = q + 2
        else:
            prev_hit = hit
        slot = np.int64((v >> syn_shift) & syn_mask)
        if syn_keys[slot] == v:
            v = syn_values[slot]
        tok[m] = v
        tdoc[m] = d
        seg[m] = sg
        m += 1
        q = nq
    n_tok = np.zeros(n_docs, np.int64)
    for q in range(m):
        n_tok[tdoc[q]] += 1
    # shingles: the k-token windows inside each segment (a segment under k tokens: one shorter window)
    keys = np.empty(m, np.uint64)
    kdoc = np.empty(m, np.int32)
    nk = 0
    mod = np.uint64(sample_mod)
    pow2 = (sample_mod & (sample_mod - 1)) == 0
    low = mod - np.uint64(1)
    seg_end = m
    for q in range(m - 1, -1, -1):
        width = min(seg_end - q, k)
        if width == k or seg[q]:
            h = np.uint64(0)
            for j in range(width):
                h += tok[q + j] * shingle_coef[j]
            h += np.uint64(width) * shingle_coef[k]
            h = _fmix(h)
            keys[nk] = h  # written always, kept when sampled: no unpredictable branch
            kdoc[nk] = tdoc[q]
            nk += ((h & low) == 0) if pow2 else (h % mod == 0)
        if seg[q]:
            seg_end = q
    keys = keys[:nk][::-1].copy()
    kdoc = kdoc[:nk][::-1].copy()
    return exact, n_tok, keys, kdoc


@njit(cache=True, nogil=True)
def clusters_per_key(gid_sorted, ds, root, threshold, out):  # pragma: no cover - compiled
    """``_Batch.template_by_clusters``' first test, per key-sorted entry, into ``out`` (zeros): is its key
    held by at least ``threshold`` distinct clusters (``root`` of the holders' documents)?"""
    m = gid_sorted.size
    stamp = np.full(root.size, -1, np.int64)  # last key group that counted this cluster
    a = 0
    while a < m:
        g = gid_sorted[a]
        b = a + 1
        while b < m and gid_sorted[b] == g:
            b += 1
        if b - a >= threshold:
            c = 0
            for s in range(a, b):
                r = root[ds[s]]
                if stamp[r] != g:
                    stamp[r] = g
                    c += 1
            if c >= threshold:
                out[a:b] = True
        a = b


@njit(cache=True, nogil=True)
def informative_table(inf, dk_order, dk, t_start, cum, table, t_rank):  # pragma: no cover - compiled
    """``_Batch.pairs``' lookup table, into ``table`` and ``t_rank``: the (document, key) codes ``dk`` of
    the informative entries (``inf``, text order) in ``dk_order``'s order, and the rank of each among its
    text's informative entries (``cum``: scratch, one int32 per entry)."""
    c = 0
    for e in range(inf.size):
        if inf[e]:
            c += 1
        cum[e] = c
    doc_mask = np.uint64((1 << 23) - 1)
    m = 0
    for x in range(dk_order.size):
        e = dk_order[x]
        if inf[e]:
            code = dk[x]
            table[m] = code
            t_rank[m] = cum[e] - 1 - t_start[np.int64((code >> np.uint64(40)) & doc_mask)]
            m += 1


@njit(cache=True, nogil=True)
def sorted_entries(code, keys, doc, order, ks, ds):  # pragma: no cover - compiled
    """From the sorted (key's high bits, position) codes, each sorted entry's text-order position
    (``order``), key (``ks``) and document (``ds``), written into the arrays passed. One tight loop: its
    random reads overlap far better than in the bigger loops that use them."""
    low = np.uint64(0xFFFFFFFF)
    for s in range(code.size):
        p = np.int64(code[s] & low)
        order[s] = p
        ks[s] = keys[p]
        ds[s] = doc[p]


@njit(cache=True, nogil=True)
def batch_layout(ks, ds, eligible, cap, repeat, gid, info, ud, start):  # pragma: no cover - compiled
    """``_Batch.__init__``'s arrays from the key-sorted entries (``ks``: their keys, ``ds``: their
    documents), written into the arrays passed: each sorted entry's ``repeat`` mark (same key and text as
    the one before) and key group ``gid``; for :func:`raw_pairs`, ``info``: where the entry's key's used holders (``eligible`` documents,
    no repeats) start in ``ud`` (bits 8-63) and with how many earlier ones it pairs (at most ``cap`` < 256,
    bits 0-7); ``start`` (n + 1 zeros): where each document's non-repeat entries start in document order.
    Returns how many used holders ``ud`` got. (Big arrays come from numpy, which asks the kernel for huge
    pages: the random accesses of a million-document batch then miss the TLB far less.)"""
    m = ks.size
    n = start.size - 1
    g = -1
    u = 0
    first_used = 0
    last_used_g = -1
    for s in range(m):
        d = ds[s]
        rep = False
        if s > 0 and ks[s] == ks[s - 1]:
            rep = d == ds[s - 1]
        else:
            g += 1
        repeat[s] = rep
        gid[s] = g
        info[s] = 0
        if not rep:
            start[d + 1] += 1
            if eligible[d]:
                if g != last_used_g:
                    last_used_g = g
                    first_used = u
                info[s] = (first_used << 8) | min(u - first_used, cap)
                ud[u] = d
                u += 1
    for d in range(n):
        start[d + 1] += start[d]
    return u


@njit(cache=True, nogil=True)
def batch_by_doc(order, ks, ds, repeat, info, start, dk_order, dk, info_bd):  # pragma: no cover - compiled
    """The non-repeat entries ordered by document (stable: key order inside a document, the counting sort
    :func:`batch_layout` prepared in ``start``): their text-order positions, their (document, key) codes as
    ``_pair_code`` makes them, and their :func:`raw_pairs` words, written into the arrays passed."""
    top = np.uint64(1 << 63)
    for s in range(order.size):
        if not repeat[s]:
            d = ds[s]
            x = start[d]
            start[d] += 1
            dk_order[x] = order[s]
            dk[x] = (np.uint64(d) << np.uint64(40)) | (ks[s] >> np.uint64(24)) | top
            info_bd[x] = info[s]
