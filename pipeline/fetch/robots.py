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
    delays: dict[str, float] | None = None  # Crawl-delay per user-agent line (lower case), "*" included

    def allowed(self, url: str, user_agent: str) -> bool:
        if self.disallow_all:
            return False
        if self.parser is None:
            return True
        return self.parser.can_fetch(_token(user_agent), url)

    def crawl_delay(self, user_agent: str) -> float | None:
        """The Crawl-delay of the group that names us, else of the `*` group. Parsed here because
        urllib.robotparser drops fractional values ("Crawl-delay: 0.5")."""
        if not self.delays:
            return None
        token = _token(user_agent).lower()
        for agent, delay in self.delays.items():
            if agent != "*" and agent in token:
                return delay
        return self.delays.get("*")


def _token(user_agent: str) -> str:
    return user_agent.split("/")[0].split()[0] if user_agent.strip() else "*"


def rules_from_response(status: int | None, body: str | None) -> RobotsRules:
    """RFC 9309: 4xx means no rules; 5xx or unreachable means assume everything is disallowed for now."""
    if status is None or status >= 500:
        return RobotsRules(None, disallow_all=True, reason="robots.txt unreachable: crawling deferred")
    if status >= 400:
        return RobotsRules(None)
    lines = (body or "").splitlines()
    parser = RobotFileParser()
    parser.parse(lines)
    return RobotsRules(parser, delays=crawl_delays(lines))


def crawl_delays(lines: list[str]) -> dict[str, float]:
    """{user-agent (lower case): seconds} from the groups of a robots.txt."""
    delays: dict[str, float] = {}
    group: list[str] = []
    in_agents = False
    for raw in lines:
        line = raw.split("#", 1)[0].strip()
        if ":" not in line:
            continue
        key, value = (part.strip() for part in line.split(":", 1))
        key = key.lower()
        if key == "user-agent":
            if not in_agents:  # a user-agent line after rules starts a new group
                group = []
            group.append(value.lower())
            in_agents = True
            continue
        in_agents = False
        if key == "crawl-delay" and group:
            try:
                seconds = float(value)
            except ValueError:  # "Crawl-delay: soon"
                continue
            if seconds >= 0 and seconds == seconds and seconds != float("inf"):
                for agent in group:
                    delays.setdefault(agent, seconds)
    return delays


def cacheable(status: int | None) -> bool:
    """Answers worth remembering for a day: rules (2xx) and "no rules" (4xx). An unreachable robots.txt
    is asked again next run, so a host that recovers is crawled again soon."""
    return status is not None and status < 500
