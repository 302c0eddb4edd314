"""robots.txt rules per origin, with RFC 9309's matching and its semantics for failures.

Python's `urllib.robotparser` is not used: it takes the first rule that matches where RFC 9309 takes the
most specific one ("Disallow: /" then "Allow: /news/" refuses /news/...), and it reads `*` and `$` as
plain characters ("Disallow: /*.pdf$" refuses nothing).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit


@dataclass(slots=True)
class RobotsRule:
    allow: bool
    pattern: str  # percent-encoding normalised (see _normalise)
    regex: re.Pattern[str] | None  # for a pattern with `*` or a final `$`; else a prefix test

    def matches(self, path: str) -> bool:
        return self.regex.match(path) is not None if self.regex is not None else path.startswith(self.pattern)


@dataclass(slots=True)
class RobotsGroup:
    agents: list[str]  # product tokens, lower case ("*": any crawler)
    rules: list[RobotsRule] = field(default_factory=list)
    crawl_delay: float | None = None


@dataclass(slots=True)
class RobotsRules:
    groups: list[RobotsGroup] | None  # None: no rules (allow all) or unreachable (see disallow_all)
    disallow_all: bool = False
    reason: str | None = None
    source: str = "fetched"  # fetched | cache: where this answer came from (tests and the fetch log)
    # product token -> (its rules, its Crawl-delay): a fetch asks for every page of the host
    _chosen: dict[str, tuple[list[RobotsRule], float | None]] = field(default_factory=dict, repr=False)

    def allowed(self, url: str, user_agent: str) -> bool:
        """RFC 9309: the most specific (longest) matching rule decides, Allow on a tie; no match allows."""
        if self.disallow_all:
            return False
        rules = self._for(user_agent)[0]
        if not rules:
            return True
        path = _request_path(url)
        if path == "/robots.txt":
            return True
        best_len, allow = -1, True
        for rule in rules:
            n = len(rule.pattern)
            if (n > best_len or (n == best_len and rule.allow)) and rule.matches(path):
                best_len, allow = n, rule.allow
        return allow

    def crawl_delay(self, user_agent: str) -> float | None:
        """The Crawl-delay of the groups that name us, else of the `*` groups (not in RFC 9309, but widely
        used; parsed here with fractions such as 0.5)."""
        return self._for(user_agent)[1]

    def _for(self, user_agent: str) -> tuple[list[RobotsRule], float | None]:
        token = _token(user_agent)
        chosen = self._chosen.get(token)
        if chosen is None:
            groups = self.groups or []
            # every group naming us, merged (RFC 9309 2.2.1); else every `*` group
            mine = [g for g in groups if token in g.agents] or [g for g in groups if "*" in g.agents]
            delays = [g.crawl_delay for g in mine if g.crawl_delay is not None]
            chosen = self._chosen[token] = ([r for g in mine for r in g.rules], delays[0] if delays else None)
        return chosen


def _token(user_agent: str) -> str:
    """Our product token, lower case: "newsingest/0.1 (+https://...)" -> "newsingest"."""
    return user_agent.split("/")[0].split()[0].lower() if user_agent.strip() else "*"


_PERCENT_RE = re.compile(r"%([0-9A-Fa-f]{2})")
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")


def _normalise(path: str) -> str:
    """RFC 9309 2.2.2, for a URL's path and a rule's pattern alike: percent-encoded unreserved characters
    decoded, other escapes upper-cased, characters outside ASCII percent-encoded (UTF-8)."""
    def escape(m: re.Match[str]) -> str:
        ch = chr(int(m.group(1), 16))
        return ch if ch in _UNRESERVED else "%" + m.group(1).upper()

    if "%" in path:
        path = _PERCENT_RE.sub(escape, path)
    if not path.isascii():
        path = "".join(ch if ch.isascii() else "".join(f"%{b:02X}" for b in ch.encode("utf-8")) for ch in path)
    return path


def _request_path(url: str) -> str:
    parts = urlsplit(url)
    path = parts.path or "/"
    return _normalise(f"{path}?{parts.query}" if parts.query else path)


def _rule(allow: bool, value: str) -> RobotsRule | None:
    if not value:  # "Disallow:" with no path disallows nothing
        return None
    pattern = _normalise(value)
    if "*" not in pattern and not pattern.endswith("$"):
        return RobotsRule(allow, pattern, None)
    body, anchored = (pattern[:-1], True) if pattern.endswith("$") else (pattern, False)
    regex = ".*".join(map(re.escape, body.split("*"))) + (r"\Z" if anchored else "")
    return RobotsRule(allow, pattern, re.compile(regex, re.DOTALL))


def parse_robots(text: str) -> list[RobotsGroup]:
    """The groups of a robots.txt: one or more user-agent lines, then their rules (allow, disallow) and
    Crawl-delay. A user-agent line after a rule starts a new group; lines before any group, unknown
    records (sitemap, host) and malformed lines are ignored."""
    groups: list[RobotsGroup] = []
    group: RobotsGroup | None = None
    in_agents = False
    for raw in text.lstrip("\ufeff").splitlines():
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, value = (part.strip() for part in line.split(":", 1))
        key = key.lower()
        if key == "user-agent":
            agent = value.split("/")[0].strip().lower() or "*"
            if group is None or not in_agents:
                group = RobotsGroup([])
                groups.append(group)
            group.agents.append(agent)
            in_agents = True
        elif key in ("allow", "disallow", "crawl-delay"):
            in_agents = False
            if group is None:
                continue
            if key == "crawl-delay":
                try:
                    seconds = float(value)
                except ValueError:  # "Crawl-delay: soon"
                    continue
                if group.crawl_delay is None and 0 <= seconds < float("inf"):
                    group.crawl_delay = seconds
            else:
                rule = _rule(key == "allow", value)
                if rule is not None:
                    group.rules.append(rule)
    return groups


def rules_from_response(status: int | None, body: str | None) -> RobotsRules:
    """RFC 9309: 4xx means no rules; 5xx or unreachable means assume everything is disallowed for now."""
    if status is None or status >= 500:
        return RobotsRules(None, disallow_all=True, reason="robots.txt unreachable: crawling deferred")
    if status >= 400:
        return RobotsRules(None)
    return RobotsRules(parse_robots(body or ""))


def cacheable(status: int | None) -> bool:
    """Answers worth remembering for a day: rules (2xx) and "no rules" (4xx). An unreachable robots.txt
    is asked again next run, so a host that recovers is crawled again soon."""
    return status is not None and status < 500
