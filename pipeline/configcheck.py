"""Config validation with line-precise messages, and the config reference generated from the models.

`check_config_text` parses the YAML once into a node tree (each node knows its line and column), builds
the plain data from it, validates that with the pydantic models of `pipeline.settings`, and maps every
problem back to the line it comes from::

    feeds.yaml:7:10: feeds[2].url: 'ftp://x' must be an absolute http(s) URL
    feeds.yaml:12:3: fetch.min_dealy_s: unknown key; did you mean 'min_delay_s'?

Beyond what the models check, it finds what YAML and pydantic let through silently: a key repeated in
one mapping (PyYAML keeps the last one), a feed name used twice, an empty feed list, feed URLs that
cannot be fetched as written (a port out of range, credentials, spaces) or that the URL policy will
refuse at fetch time (a private or loopback address not listed in `fetch.allow_private`).
"""

from __future__ import annotations

import difflib
import ipaddress
import re
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

Path_ = tuple[str | int, ...]

# Problem codes (one test per class in tests/test_config_check.py).
YAML_SYNTAX = "yaml_syntax"
DUPLICATE_KEY = "duplicate_key"
NOT_A_MAPPING = "not_a_mapping"
UNKNOWN_KEY = "unknown_key"
MISSING_KEY = "missing_key"
INVALID_VALUE = "invalid_value"
DUPLICATE_FEED = "duplicate_feed_name"
NO_FEEDS = "no_feeds"
BAD_URL = "bad_url"
REFUSED_URL = "refused_url"
BAD_NETWORK = "bad_allow_private"
DUPLICATE_URL = "duplicate_feed_url"


@dataclass(frozen=True, slots=True)
class Problem:
    code: str
    message: str
    path: Path_ = ()
    line: int | None = None  # 1-based
    column: int | None = None  # 1-based
    severity: Literal["error", "warning"] = "error"

    def format(self, origin: str) -> str:
        where = origin
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        label = "" if self.severity == "error" else "warning: "
        dotted = format_path(self.path)
        return f"{where}: {label}{dotted + ': ' if dotted else ''}{self.message}"


@dataclass(slots=True)
class CheckResult:
    origin: str
    config: Any = None  # a pipeline.settings.Config when no error was found
    validated: Any = None  # the Config as the models accepted it (other checks may still have found errors)
    problems: list[Problem] = field(default_factory=list)

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def report(self) -> str:
        return "\n".join(p.format(self.origin) for p in self.problems)


def format_path(path: Path_) -> str:
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


# ---------------------------------------------------------------------------------------------- YAML


class _Positions:
    """Where each value (and each mapping key) of the document starts."""

    def __init__(self) -> None:
        self.value: dict[Path_, tuple[int, int]] = {}
        self.key: dict[Path_, tuple[int, int]] = {}

    def at(self, path: Path_, *, key: bool = False) -> tuple[int | None, int | None]:
        """The position of `path`, else of its nearest ancestor that has one."""
        table = self.key if key else self.value
        p = tuple(path)
        while p:
            if p in table:
                return table[p]
            if key and p in self.value:
                return self.value[p]
            p = p[:-1]
        return self.value.get((), (None, None))


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _walk(node: yaml.Node, path: Path_, pos: _Positions, problems: list[Problem]) -> None:
    pos.value[path] = _mark(node)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, tuple[int, int]] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = key_node.value
            line, col = _mark(key_node)
            if key in seen:
                problems.append(Problem(
                    DUPLICATE_KEY,
                    f"key {key!r} appears twice in this mapping (first on line {seen[key][0]}); YAML would "
                    "silently keep only this last one: delete one of them",
                    path + (key,), line, col))
            seen[key] = (line, col)
            pos.key[path + (key,)] = (line, col)
            _walk(value_node, path + (key,), pos, problems)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, path + (i,), pos, problems)


def _load(text: str, problems: list[Problem]) -> tuple[Any, _Positions]:
    # libyaml's parser when PyYAML has it (ten times faster: 3 ms instead of 30 for 200 feeds, at every
    # run's start); a document it refuses is read again by the pure-Python one, whose messages we show.
    fast = getattr(yaml, "CSafeLoader", None)
    if fast is not None:
        found: list[Problem] = []
        data, pos = _load_with(fast, text, found)
        if not any(p.code == YAML_SYNTAX for p in found):
            problems.extend(found)
            return data, pos
    return _load_with(yaml.SafeLoader, text, problems)


def _load_with(loader_class: Any, text: str, problems: list[Problem]) -> tuple[Any, _Positions]:
    pos = _Positions()
    loader = loader_class(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None, pos
        _walk(node, (), pos, problems)
        return loader.construct_document(node), pos
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        what = " ".join(filter(None, (exc.context, exc.problem)))
        problems.append(Problem(YAML_SYNTAX, f"not valid YAML: {what}; fix the syntax (indentation, quotes, "
                                "a ':' after each key)", (), mark.line + 1 if mark else None,
                                mark.column + 1 if mark else None))
        return None, pos
    except yaml.YAMLError as exc:
        problems.append(Problem(YAML_SYNTAX, f"not valid YAML: {exc}"))
        return None, pos
    finally:
        loader.dispose()


# ---------------------------------------------------------------------------------------------- models


def _unwrap(annotation: Any) -> Any:
    """The model class inside Optional[...] / X | None, else the annotation itself."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return _unwrap(args[0])
    return annotation


def _model_at(root: Any, path: Path_) -> Any:
    """The pydantic model class that validates the mapping at `path` (None when it is not a model)."""
    from pydantic import BaseModel

    current: Any = root
    for part in path:
        current = _unwrap(current)
        if isinstance(part, int):
            if typing.get_origin(current) in (list, tuple, set, frozenset):
                current = typing.get_args(current)[0]
                continue
            return None
        if not (isinstance(current, type) and issubclass(current, BaseModel)) or part not in current.model_fields:
            return None
        current = current.model_fields[part].annotation
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _suggest(key: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(key, choices, n=1, cutoff=0.6)
    if close:
        return f"did you mean {close[0]!r}?"
    return "valid keys here: " + ", ".join(choices)


_TYPE_HINTS = {
    "float_parsing": "a number",
    "float_type": "a number",
    "int_parsing": "a whole number",
    "int_type": "a whole number",
    "int_from_float": "a whole number",
    "bool_parsing": "true or false",
    "bool_type": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "model_type": "a mapping of keys to values",
    "model_attributes_type": "a mapping of keys to values",
    "dict_type": "a mapping of keys to values",
}


def _pydantic_problem(err: dict[str, Any], pos: _Positions, root_model: Any) -> Problem:
    loc: Path_ = tuple(err["loc"])
    kind = err["type"]
    given = err.get("input")
    shown = repr(given) if isinstance(given, str | int | float | bool) or given is None else None
    if kind == "extra_forbidden":
        model = _model_at(root_model, loc[:-1])
        choices = list(model.model_fields) if model is not None else []
        line, col = pos.at(loc, key=True)
        return Problem(UNKNOWN_KEY, f"unknown key; {_suggest(str(loc[-1]), choices)}", loc, line, col)
    if kind == "missing":
        line, col = pos.at(loc[:-1])
        return Problem(MISSING_KEY, f"required key {loc[-1]!r} is missing", loc, line, col)
    line, col = pos.at(loc)
    if kind in _TYPE_HINTS:
        message = f"expected {_TYPE_HINTS[kind]}, got {shown if shown is not None else type(given).__name__}"
    else:
        message = err["msg"].removeprefix("Value error, ")
        if shown is not None and shown not in message:
            message += f" (got {shown})"
    return Problem(INVALID_VALUE, message, loc, line, col)


# ---------------------------------------------------------------------------------------------- checks

_HOST_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")


def _check_url(url: str, allow_private: list[str]) -> tuple[str, str, str] | None:
    """(code, severity, message) for a feed URL that passed the model's scheme check but cannot work."""
    from urllib.parse import urlsplit

    from pipeline.fetch.policy import METADATA_ADDRESSES, PolicyError, UrlPolicy

    if url != url.strip() or any(c.isspace() for c in url):
        return BAD_URL, "error", "the URL contains spaces; percent-encode them (%20) or remove them"
    try:
        UrlPolicy().parse(url)
    except PolicyError as exc:
        return BAD_URL, "error", f"{exc}; this feed could never be fetched: fix the URL"
    host = (urlsplit(url).hostname or "").rstrip(".")
    try:
        addr = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        addr = None
    if addr is None:
        if host == "localhost" or host.endswith(".localhost"):
            addr = ipaddress.ip_address("127.0.0.1")
        else:
            labels = host.split(".")
            bad = [label for label in labels if not _HOST_LABEL.match(label)]
            if bad:
                return BAD_URL, "error", (f"host {host!r} is not a valid DNS name (label {bad[0]!r}); "
                                          "fix the URL's host")
            if len(labels) == 1:
                return REFUSED_URL, "warning", (f"host {host!r} has no domain part; it resolves only on a local "
                                                "network, and a private address is refused unless listed in "
                                                "fetch.allow_private")
            return None
    try:
        policy = UrlPolicy(allow_private)
    except ValueError:
        return None  # the bad allow_private entry is reported on its own line
    if not policy.address_allowed(addr):
        why = "a cloud metadata address" if addr in METADATA_ADDRESSES else policy.why_refused(addr)
        return REFUSED_URL, "warning", (f"{host} is {why}: the fetcher will refuse this feed unless "
                                        f"fetch.allow_private lists it (e.g. allow_private: [\"{addr}\"])")
    return None


def _structural_checks(data: dict[str, Any], pos: _Positions) -> list[Problem]:
    problems: list[Problem] = []
    feeds = data.get("feeds")
    if feeds is None or feeds == []:
        line, col = pos.at(("feeds",), key=True) if "feeds" in data else (None, None)
        problems.append(Problem(NO_FEEDS, "the feed list is empty: add feeds as '- {name: ..., url: ...}' under "
                                "'feeds:'; a run would have nothing to ingest", ("feeds",), line, col))
    fetch = data.get("fetch") if isinstance(data.get("fetch"), dict) else {}
    allow = fetch.get("allow_private", [])
    good_allow: list[str] = []
    if isinstance(allow, list):
        for i, entry in enumerate(allow):
            try:
                ipaddress.ip_network(str(entry), strict=False)
                good_allow.append(str(entry))
            except ValueError:
                line, col = pos.at(("fetch", "allow_private", i))
                problems.append(Problem(BAD_NETWORK, f"{entry!r} is not an IP address or network (CIDR such as "
                                        "10.0.0.0/8); host names are not accepted here",
                                        ("fetch", "allow_private", i), line, col))
    if not isinstance(feeds, list):
        return problems
    names: dict[str, int] = {}
    urls: dict[str, int] = {}
    for i, feed in enumerate(feeds):
        if not isinstance(feed, dict):
            continue
        name, url = feed.get("name"), feed.get("url")
        if isinstance(name, str):
            if name in names:
                line, col = pos.at(("feeds", i, "name"))
                first_line = pos.at(("feeds", names[name], "name"))[0]
                problems.append(Problem(DUPLICATE_FEED, f"feed name {name!r} is already used by feeds[{names[name]}] "
                                        f"(line {first_line}); names identify feeds in the warehouse: rename one",
                                        ("feeds", i, "name"), line, col))
            else:
                names[name] = i
        if isinstance(url, str) and url.split(":", 1)[0].lower() in ("http", "https"):
            found = _check_url(url, good_allow)
            if found:
                code, severity, message = found
                line, col = pos.at(("feeds", i, "url"))
                problems.append(Problem(code, message, ("feeds", i, "url"), line, col, severity))  # type: ignore[arg-type]
            if url in urls:
                line, col = pos.at(("feeds", i, "url"))
                problems.append(Problem(DUPLICATE_URL, f"the same URL as feeds[{urls[url]}]; the feed would be "
                                        "fetched twice per run", ("feeds", i, "url"), line, col, "warning"))
            else:
                urls[url] = i
    if isinstance(feeds, list) and feeds and all(isinstance(f, dict) and f.get("enabled") is False for f in feeds):
        line, col = pos.at(("feeds",), key=True)
        problems.append(Problem(NO_FEEDS, "every feed has enabled: false; a run would have nothing to ingest",
                                ("feeds",), line, col))
    return problems


def _covered(err: dict[str, Any], mine: list[Problem]) -> bool:
    """A pydantic error that one of our own, line-precise problems already reports."""
    loc = tuple(err["loc"])
    if loc == ("fetch", "allow_private") and any(p.code == BAD_NETWORK for p in mine):
        return True
    if loc == () and "used twice" in err["msg"] and any(p.code == DUPLICATE_FEED for p in mine):
        return True
    return False


def check_config_text(text: str, origin: str = "<config>") -> CheckResult:
    """Every problem of a config text, each with its line; `.config` is set when there is no error."""
    from pydantic import ValidationError

    from pipeline.settings import Config

    result = CheckResult(origin)
    data, pos = _load(text, result.problems)
    if any(p.code == YAML_SYNTAX for p in result.problems):
        return result
    if data is None:
        data = {}
    if not isinstance(data, dict):
        line, col = pos.at(())
        result.problems.append(Problem(NOT_A_MAPPING, "the top level must be a mapping with a 'feeds:' list "
                                       f"(found {type(data).__name__})", (), line, col))
        return result
    if "feeds" in data and data["feeds"] is None:  # `feeds:` with nothing under it: an empty list
        data["feeds"] = []
    mine = _structural_checks(data, pos)
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        config = None
        for err in exc.errors():
            if not _covered(err, mine):
                result.problems.append(_pydantic_problem(err, pos, Config))
    result.validated = config
    result.problems.extend(mine)
    result.problems.sort(key=lambda p: (p.line or 0, p.column or 0, p.severity != "error"))
    if not result.errors:
        result.config = config
    return result


def check_config_file(path: str) -> CheckResult:
    from pathlib import Path

    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        return CheckResult(str(p), problems=[Problem("missing_file", "config file does not exist; check the path "
                                                     "(relative paths start from the current directory)")])
    except IsADirectoryError:
        return CheckResult(str(p), problems=[Problem("missing_file", "is a directory, not a config file")])
    except UnicodeDecodeError as exc:
        return CheckResult(str(p), problems=[Problem("unreadable_file", f"not UTF-8 text ({exc.reason} at byte "
                                                     f"{exc.start}); save the file as UTF-8")])
    except OSError as exc:
        return CheckResult(str(p), problems=[Problem("unreadable_file", f"cannot read the config file: "
                                                     f"{exc.strerror}; check its permissions")])
    return check_config_text(text, str(p))


# ---------------------------------------------------------------------------------------------- reference


def _type_name(annotation: Any) -> str:
    annotation = annotation if annotation is not None else Any
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " \\| ".join(f"`{a}`" for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(a) for a in typing.get_args(annotation))
    if origin in (list, tuple, set, frozenset):
        args = typing.get_args(annotation)
        return f"list of {_type_name(args[0])}" if args else "list"
    if annotation is type(None):
        return "null"
    from pydantic import BaseModel

    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "mapping"
    return {str: "string", int: "integer", float: "number", bool: "boolean"}.get(annotation,
                                                                                getattr(annotation, "__name__", str(annotation)))


def _constraints(info: Any) -> str:
    names = {"ge": "≥", "gt": ">", "le": "≤", "lt": "<", "min_length": "min length", "max_length": "max length",
             "pattern": "matches"}
    out = []
    for meta in info.metadata:
        for attr, label in names.items():
            value = getattr(meta, attr, None)
            if value is not None:
                out.append(f"{label} `{value}`" if attr == "pattern" else f"{label} {value}")
    return ", ".join(out)


def _default(info: Any) -> str:
    from pydantic_core import PydanticUndefined

    if info.is_required():
        return "(required)"
    if info.default_factory is not None:
        try:
            value = info.default_factory()
        except TypeError:
            return "(computed)"
        from pydantic import BaseModel

        if isinstance(value, BaseModel):
            return "(see below)"
    else:
        value = info.default
    if value is PydanticUndefined:
        return ""
    if value is None:
        return "`null`"
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, str):
        from pipeline import __version__

        value = value.replace(__version__, "<version>")  # the reference must not change with each release
        return f'`"{value}"`' if value else '`""`'
    return f"`{value}`"


def config_reference_markdown() -> str:
    """The config reference, one table per section, generated from the pydantic models (docs embed it)."""
    from pydantic import BaseModel

    from pipeline.settings import Config

    sections: list[tuple[str, type[BaseModel]]] = []

    def collect(prefix: str, model: type[BaseModel]) -> None:
        sections.append((prefix, model))
        for name in model.model_fields:
            inner = _model_at(model, (name,))
            if inner is not None:
                collect(f"{prefix}.{name}" if prefix else name, inner)
            else:
                item = _model_at(model, (name, 0))
                if item is not None:
                    collect(f"{prefix}.{name}[]" if prefix else f"{name}[]", item)

    collect("", Config)
    lines: list[str] = []
    for prefix, model in sections:
        title = f"`{prefix}`" if prefix else "top level"
        doc = " ".join((model.__doc__ or "").split()) if model.__doc__ and model is not BaseModel else ""
        lines.append(f"#### {title}")
        lines.append("")
        if doc and not doc.startswith("!!!") and "Usage docs:" not in doc:
            lines.append(doc)
            lines.append("")
        lines.append("| key | type | default | allowed | meaning |")
        lines.append("|---|---|---|---|---|")
        for name, info in model.model_fields.items():
            desc = (info.description or "").replace("|", "\\|").replace("\n", " ")
            lines.append(f"| `{name}` | {_type_name(info.annotation)} | {_default(info)} | {_constraints(info)} | "
                         f"{desc} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"
