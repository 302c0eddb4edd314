"""Canonical article URLs: one spelling per article, so that URL twins share an id.

:func:`canonicalize_url` applies only rewrites that do not change which article a URL names:

* scheme and host lowercased, IDN hosts as punycode, trailing dot and default port dropped;
* host prefixes ``www.``, ``m.``, ``mobile.`` and ``amp.`` dropped (mobile, AMP and desktop editions of
  one page), as are Google AMP cache wrappers (``*.cdn.ampproject.org/c/s/host/path``);
* AMP paths: a ``/amp`` path segment, a trailing ``/amp`` and ``.amp.html`` (-> ``.html``); AMP
  switches in the query (``amp=1``, ``outputType=amp``...);
* tracking parameters (``utm_*``, ``fbclid``, ``gclid``, ``mc_cid``, ``ref``, ``ocid``, ``_ga``...)
  removed, the remaining ones sorted by name (values untouched, repeated names keep their order);
* the fragment dropped (except ``#!`` routes of old single-page sites, which name the content);
* percent-encoding normalised (unreserved characters decoded, hex digits uppercase, non-ASCII
  encoded as UTF-8), dot segments resolved, an empty path written ``/``.

It never guesses: ``http`` and ``https`` stay different, ``index.html`` and trailing slashes are kept,
and parameters that may select content (``id``, ``p``, ``page``...) are kept.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from functools import lru_cache
from urllib.parse import SplitResult, urlsplit, urlunsplit

__all__ = ["article_id_for", "canonicalize_url", "host_of"]

_TRACKING_PARAMS = frozenset(
    {
        "fbclid", "gclid", "gclsrc", "dclid", "gbraid", "wbraid", "msclkid", "yclid", "twclid", "ttclid",
        "li_fat_id", "igshid", "igsh", "mc_cid", "mc_eid", "mkt_tok", "_ga", "_gl", "_hsenc", "_hsmi",
        "ref", "ref_src", "ref_url", "referrer", "cmpid", "cmp", "ocid", "icid", "ncid", "s_cid", "s_kwcid",
        "xtor", "spm", "scid", "sr_share", "smid", "smtyp", "__twitter_impression", "soc_src", "soc_trk",
        "wt.mc_id", "wt_mc_id", "ito", "ns_mchannel", "ns_source", "ns_campaign", "ns_linkname", "ns_fee",
        "cid_source", "rss_source", "feedtype", "ftag", "guccounter", "guce_referrer", "guce_referrer_sig",
    }
)  # fmt: skip
_TRACKING_PREFIXES = ("utm_", "at_", "pk_", "mtm_", "hsa_", "oly_", "vero_", "__hs", "_branch")
# query switches that only select the AMP rendering of the same article
_AMP_PARAMS = {"amp": {"", "1", "true", "yes"}, "outputtype": {"amp"}, "output": {"amp"}, "format": {"amp"}}
_HOST_PREFIXES = ("www.", "m.", "mobile.", "amp.")
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PCT = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PATH_SAFE = _UNRESERVED | frozenset("!$&'()*+,;=:@/%")
_QUERY_SAFE = _PATH_SAFE | frozenset("?")


def _pct_normalize(text: str, safe: frozenset[str]) -> str:
    """Decode escapes of unreserved characters, uppercase the others, encode what may not appear raw."""

    def fix(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in _UNRESERVED else "%" + m.group(1).upper()

    text = _PCT.sub(fix, text)
    if safe.issuperset(text):
        return text
    out = []
    for i, c in enumerate(text):
        if c == "%" and not _PCT.match(text, i):
            out.append("%25")
        elif c in safe:
            out.append(c)
        else:
            out.append("".join(f"%{b:02X}" for b in c.encode("utf-8", "surrogatepass")))
    return "".join(out)


def _idna(host: str) -> str:
    host = host.lower().rstrip(".")
    if host.isascii():
        return host
    labels = []
    for label in host.split("."):
        try:
            labels.append(label.encode("idna").decode("ascii") if not label.isascii() else label)
        except UnicodeError:
            labels.append(label)
    return ".".join(labels)


def host_of(url: str) -> str:
    """The URL's host as a server sees it: lowercase, punycode, without port, userinfo or trailing dot.

    Unlike :func:`canonicalize_url` it keeps ``www.``/``m.`` prefixes (they are different servers).
    """
    try:
        host = urlsplit(url.strip()).hostname or ""
    except ValueError:
        return ""
    return _idna(host)


def _bare_host(host: str) -> str:
    for _ in range(2):  # "www.m.example.com"
        for prefix in _HOST_PREFIXES:
            if host.startswith(prefix) and host.count(".") >= 2:
                host = host[len(prefix) :]
                break
        else:
            break
    return host


def _unwrap_amp_cache(parts: SplitResult) -> SplitResult | None:
    """``https://www-example-com.cdn.ampproject.org/c/s/www.example.com/a`` -> ``https://www.example.com/a``."""
    host = (parts.hostname or "").lower()
    if not host.endswith(".cdn.ampproject.org"):
        return None
    m = re.match(r"^/[a-z]/(s/)?([^/]+)(/.*)?$", parts.path)
    if not m:
        return None
    scheme = "https" if m.group(1) else "http"
    return SplitResult(scheme, m.group(2), m.group(3) or "/", parts.query, parts.fragment)


def _clean_path(path: str) -> str:
    if not path:
        return "/"
    trailing = path.endswith("/")
    if "/." in path:
        path = posixpath.normpath(path)
        if path.startswith("//"):
            path = "/" + path.lstrip("/")
        if trailing and not path.endswith("/"):
            path += "/"
    segments = path.split("/")
    kept = [s for i, s in enumerate(segments) if not (s.lower() == "amp" and 0 < i)]
    if len(kept) != len(segments):
        path = "/".join(kept) or "/"
        if not path.startswith("/"):
            path = "/" + path
        if path != "/" and path.endswith("/") and not trailing:
            path = path.rstrip("/") or "/"
    if path.lower().endswith(".amp.html"):
        path = path[: -len(".amp.html")] + ".html"
    elif path.lower().endswith(".amp.htm"):
        path = path[: -len(".amp.htm")] + ".htm"
    return path or "/"


def _is_tracking(name: str) -> bool:
    key = name.lower()
    return key in _TRACKING_PARAMS or key.startswith(_TRACKING_PREFIXES)


def _clean_query(query: str) -> str:
    if not query:
        return ""
    kept = []
    for part in query.split("&"):
        if not part:
            continue
        name, eq, value = part.partition("=")
        norm_name = _pct_normalize(name, _QUERY_SAFE)
        decoded = _PCT.sub(lambda m: chr(int(m.group(1), 16)), norm_name).replace("+", " ")
        if _is_tracking(decoded):
            continue
        amp_values = _AMP_PARAMS.get(decoded.lower())
        if amp_values is not None and value.lower() in amp_values:
            continue
        kept.append(norm_name + eq + _pct_normalize(value, _QUERY_SAFE))
    kept.sort(key=lambda part: part.partition("=")[0])  # stable: repeated names keep their order
    return "&".join(kept)


@lru_cache(maxsize=1024)  # a run's selection asks for a feed's URLs, and then its count of new items
def canonicalize_url(url: str) -> str:
    """The canonical spelling of an article URL (see the module docstring). Non-HTTP URLs are only trimmed."""
    raw = url.strip()
    try:
        parts = urlsplit(raw)
    except ValueError:
        return raw
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.netloc:
        return raw
    unwrapped = _unwrap_amp_cache(parts)
    if unwrapped is not None:
        parts = unwrapped
        scheme = parts.scheme
    try:
        port = parts.port
    except ValueError:
        port = None
    host = _bare_host(_idna(parts.hostname or ""))
    netloc = f"[{host}]" if ":" in host else host
    if parts.username is not None:
        netloc = parts.username + (":" + parts.password if parts.password is not None else "") + "@" + netloc
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        netloc += f":{port}"
    path = _clean_path(_pct_normalize(parts.path, _PATH_SAFE))
    query = _clean_query(parts.query)
    fragment = parts.fragment if parts.fragment.startswith("!") else ""
    return urlunsplit((scheme, netloc, path, query, fragment))


def article_id_for(canonical_url: str) -> str:
    """Stable article id: the 64-bit blake2b of the canonical URL, as 16 hex characters."""
    return hashlib.blake2b(canonical_url.encode("utf-8"), digest_size=8).hexdigest()
