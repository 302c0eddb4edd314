"""Content checks and decoding: magic-byte sniffing, then charset from BOM, header, <meta>, detection.

A declared charset is a claim, not a fact: cp1251 pages labelled UTF-8 and UTF-8 pages labelled cp1251
are common. We decode with the declared charset only when the bytes agree, and flag the mismatch.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

import charset_normalizer

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"RIFF", "image/webp"),  # also wav/avi: none of them is HTML
    (b"PK\x03\x04", "application/zip"),
    (b"\x1f\x8b", "application/gzip"),
    (b"\x00\x00\x01\x00", "image/x-icon"),
    (b"ID3", "audio/mpeg"),
    (b"\x00\x00\x00\x18ftyp", "video/mp4"),
    (b"\x00\x00\x00\x20ftyp", "video/mp4"),
)

_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_\-:.]+)""", re.I)
_XML_DECL = re.compile(rb"""^\s*<\?xml[^>]+encoding\s*=\s*["']([A-Za-z0-9_\-.]+)["']""", re.I)
_HEADER_CHARSET = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9_\-:.]+)""", re.I)


def sniff_binary(body: bytes) -> str | None:
    """The media type of a binary (non-text) body, from its magic bytes; None for text-like bodies."""
    head = body[:16]
    for magic, media in _MAGIC:
        if head.startswith(magic):
            return media
    return None


def looks_like_html(body: bytes) -> bool:
    head = body[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<!--", b"<meta", b"<title", b"<div", b"<p"))


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _HEADER_CHARSET.search(content_type)
    return _normalise(m.group(1)) if m else None


def _normalise(name: str | bytes | None) -> str | None:
    if not name:
        return None
    if isinstance(name, bytes):
        name = name.decode("ascii", "ignore")
    try:
        return codecs.lookup(name.strip().lower()).name
    except LookupError:
        return None


@dataclass(slots=True)
class Decoded:
    text: str
    charset: str
    declared: str | None
    mismatch: bool  # the declared charset did not fit the bytes
    source: str  # bom | header | meta | detected | fallback


def _has_multibyte_utf8(body: bytes) -> bool:
    return any(b >= 0xC2 for b in body[:65536]) and _strict_ok(body, "utf-8")


def _strict_ok(body: bytes, charset: str) -> bool:
    try:
        body.decode(charset)
    except (UnicodeDecodeError, LookupError):
        return False
    return True


def _mostly_utf8(body: bytes) -> bool:
    """True when the invalid UTF-8 is sparse damage, not a whole page in a legacy charset."""
    replaced = body.decode("utf-8", "replace").count("\ufffd")
    if not replaced:
        return True
    non_ascii = len(body) - len(body.translate(None, bytes(range(0x80, 0x100))))
    return replaced / non_ascii < 0.2 or replaced / len(body) < 0.005


_LETTER_RUN = re.compile(r"[^\W\d_]{3,}")


def _has_words(body: bytes, charset: str, minimum: int = 3) -> bool:
    """Does decoding with `charset` give real non-ASCII words (Cyrillic, Greek, accented Latin...)?

    A legacy page mislabelled as UTF-8 does; a UTF-8 page with a few broken bytes decodes to short runs
    of symbols in any single-byte charset (a stray byte inside an ASCII word makes one odd letter, which
    is why a word needs two non-ASCII letters to count)."""
    text = body[:200_000].decode(charset, "replace")
    count = 0
    for m in _LETTER_RUN.finditer(text):
        if sum(1 for c in m.group() if ord(c) > 127) >= 2:
            count += 1
            if count >= minimum:
                return True
    return False


def decode_body(body: bytes, content_type: str | None = None) -> Decoded:
    """Decode a text body, trusting declarations only as far as the bytes agree with them."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return Decoded(body[len(bom):].decode(name, "replace").replace("\x00", ""), name, name, False, "bom")

    header = charset_from_content_type(content_type)
    m = _META_CHARSET.search(body[:4096]) or _XML_DECL.search(body[:1024])
    meta = _normalise(m.group(1)) if m else None
    declared = header or meta
    source = "header" if header else "meta"

    if declared in ("utf-16-le", "utf-16-be", "utf-16", "utf-32"):  # no BOM and a 16-bit claim: usually false
        declared = None

    if declared == "utf-8":
        if _mostly_utf8(body):
            # Valid UTF-8, or UTF-8 with a few broken sequences: keep it and replace the damage.
            return _done(body, "utf-8", declared, False, source)
        detected = _detect(body)
        if detected and detected != "utf-8" and _has_words(body, detected):
            return _done(body, detected, declared, True, "detected")
        # No other charset turns the bytes into words: damaged UTF-8 (replacement characters), not a lie.
        return _done(body, "utf-8", declared, False, source)

    if declared:
        if declared != "utf-8" and _has_multibyte_utf8(body):
            # Valid multi-byte UTF-8 is almost never an accident: the label is wrong.
            return _done(body, "utf-8", declared, True, "detected")
        if meta and header and meta != header and _strict_ok(body, meta) and not _strict_ok(body, header):
            return _done(body, meta, declared, True, "meta")
        if _strict_ok(body, declared):
            return _done(body, declared, declared, False, source)
        detected = _detect(body)
        if detected and detected != declared:
            return _done(body, detected, declared, True, "detected")
        return _done(body, declared, declared, False, source, errors="replace")

    if _strict_ok(body, "utf-8"):
        return _done(body, "utf-8", None, False, "detected")
    detected = _detect(body)
    return _done(body, detected or "cp1252", None, False, "detected" if detected else "fallback")


def _detect(body: bytes) -> str | None:
    best = charset_normalizer.from_bytes(body[:200_000]).best()
    return _normalise(best.encoding) if best else None


def _done(body: bytes, charset: str, declared: str | None, mismatch: bool, source: str, errors: str = "replace") -> Decoded:
    text = body.decode(charset, errors)
    if "\x00" in text:
        text = text.replace("\x00", "")  # databases and XML parsers reject NUL; it is never content
    return Decoded(text, charset, declared, mismatch, source)
