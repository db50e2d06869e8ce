"""The words of the reports, one data file per language, keyed by code.

Findings and checklist items in a Report carry only a `code` and `params`; the
templates look their title, root-cause sentence, probable causes, modules to look at
and recommended actions up here, so one JSON report renders in any language. The words
live in `hodei/report/texts/<lang>.toml` (package data, shipped in the wheel), read
with tomllib and validated once; docs/report-catalogue.md says how to add a finding or
a language.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

Priority = Literal["high", "medium", "low"]


class _Texts(BaseModel):
    # A misspelt key in a language file is an error, not a silently missing sentence.
    model_config = ConfigDict(extra="forbid", frozen=True)


class Action(_Texts):
    priority: Priority
    text: str


class FindingText(_Texts):
    title: str
    root_cause: str  # one sentence, formatted with the finding's params
    causes: list[str]
    modules: list[str]
    actions: list[Action]  # by priority: the report groups them high / medium / low


class LanguageTexts(_Texts):
    """Everything one `texts/<lang>.toml` holds."""

    severity: dict[str, str]  # "critical" | "major" | "minor" -> the word shown
    components: dict[str, str]  # English component name (as in the JSON) -> shown name
    checklist: dict[str, str]  # checklist code -> sentence ({interval} ...)
    findings: dict[str, FindingText]
    #: Additive: sentences of evidence, symptoms, step errors and report sections,
    #: keyed by code (hodei.report.model.Phrase), so no English leaks into a report.
    phrases: dict[str, str] = {}


def _texts_dir() -> Traversable:
    return files("hodei.report").joinpath("texts")


#: The report languages: one per data file (each also needs a report.<lang>.md.j2).
LANGS: tuple[str, ...] = tuple(
    sorted(p.name.removesuffix(".toml") for p in _texts_dir().iterdir() if p.name.endswith(".toml"))
)


@cache
def texts(lang: str) -> LanguageTexts:
    """The words of `lang`, read and validated on first use."""
    if lang not in LANGS:
        raise ValueError(f"unsupported report language {lang!r}; use one of {', '.join(LANGS)}")
    data = tomllib.loads(_texts_dir().joinpath(f"{lang}.toml").read_text(encoding="utf-8"))
    return LanguageTexts.model_validate(data)


class _Lenient(dict[str, Any]):
    def __missing__(self, key: str) -> str:
        return "?"


def fill(template: str, params: dict[str, Any], lang: str = "en") -> str:
    """`template` formatted with `params`; a missing parameter shows as '?', never raises.
    A parameter that is a phrase (a dict with a `code`) is said in `lang`."""
    said = {k: _said(v, lang) for k, v in params.items()}
    try:
        return template.format_map(_Lenient(said))
    except (ValueError, IndexError):
        return template


def finding_text(code: str, lang: str) -> FindingText:
    """The finding's words in `lang` (English if `lang` lacks them; the code itself if
    no language knows it)."""
    found = texts(lang).findings.get(code) or texts("en").findings.get(code)
    return found or FindingText(title=code, root_cause=code, causes=[], modules=[], actions=[])


def phrase_text(code: str, lang: str) -> str | None:
    """The phrase's template; `finding:<CODE>` is that finding's root-cause sentence."""
    if code.startswith("finding:"):
        return finding_text(code.removeprefix("finding:"), lang).root_cause
    return texts(lang).phrases.get(code) or texts("en").phrases.get(code)


def say(phrase: Any, lang: str, fallback: str = "") -> str:
    """A Phrase (or its dict form) in `lang`; a parameter that is itself a phrase is
    said first. `fallback` (the English line) when there is no phrase or no text."""
    if phrase is None:
        return fallback
    data = phrase if isinstance(phrase, dict) else phrase.model_dump()
    template = phrase_text(str(data.get("code", "")), lang)
    if template is None:
        return fallback or str(data.get("code", ""))
    return fill(template, dict(data.get("params") or {}), lang)


def _said(value: Any, lang: str) -> Any:
    """A parameter as the sentence says it: a phrase said, a list of phrases joined."""
    if isinstance(value, BaseModel) or (isinstance(value, dict) and "code" in value):
        return say(value, lang)
    if (
        isinstance(value, list)
        and value
        and all(isinstance(v, BaseModel) or (isinstance(v, dict) and "code" in v) for v in value)
    ):
        return "; ".join(say(v, lang) for v in value)
    return value


def checklist_text(code: str, lang: str, params: dict[str, Any] | None = None) -> str:
    sentence = texts(lang).checklist.get(code) or texts("en").checklist.get(code) or code
    return fill(sentence, params or {"interval": "X s"})


def component_name(name: str, lang: str) -> str:
    return texts(lang).components.get(name, name)


def severity_word(severity: str, lang: str) -> str:
    return texts(lang).severity.get(severity, severity)
