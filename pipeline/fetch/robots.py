"""robots.txt rules per origin (RFC 9309 semantics for failures)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.robotparser import RobotFileParser


@dataclass(slots=True)
class RobotsRules:
    parser: RobotFileParser | None  # None: no rules (allow all) or unreachable (see disallow_all)
    disallow_all: bool = False
    reason: str | None = None
    source: str = "fetched"  # fetched | cache: where this answer came from (tests and the fetch log)

    def allowed(self, url: str, user_agent: str) -> bool:
        if self.disallow_all:
            return False
        if self.parser is None:
            return True
        return self.parser.can_fetch(_token(user_agent), url)

    def crawl_delay(self, user_agent: str) -> float | None:
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(_token(user_agent))
        try:
            return float(delay) if delay is not None else None
        except ValueError:  # "Crawl-delay: soon"
            return None


def _token(user_agent: str) -> str:
    return user_agent.split("/")[0].split()[0] if user_agent.strip() else "*"


def rules_from_response(status: int | None, body: str | None) -> RobotsRules:
    """RFC 9309: 4xx means no rules; 5xx or unreachable means assume everything is disallowed for now."""
    if status is None or status >= 500:
        return RobotsRules(None, disallow_all=True, reason="robots.txt unreachable: crawling deferred")
    if status >= 400:
        return RobotsRules(None)
    parser = RobotFileParser()
    parser.parse((body or "").splitlines())
    return RobotsRules(parser)


def cacheable(status: int | None) -> bool:
    """Answers worth remembering for a day: rules (2xx) and "no rules" (4xx). An unreachable robots.txt
    is asked again next run, so a host that recovers is crawled again soon."""
    return status is not None and status < 500
