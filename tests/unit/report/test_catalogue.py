"""The words of the reports (hodei/report/texts/<lang>.toml): every finding code and
checklist item has its text, every field of it, in every language, and no language
has a code the others lack."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from hodei.report.catalogue import LANGS, checklist_text, finding_text, texts
from hodei.report.e2e_components import CHECKLIST_COMPONENT
from hodei.report.precedence import FINDING_COMPONENT, ROOT_CAUSE_ORDER

ROOT = Path(__file__).resolve().parents[3]
#: Upper-case constants in the doctor's and the rules' code that are not finding codes.
#: (gRPC status names the metrics checks match.)
NOT_FINDINGS = {"RST_STREAM", "DATA_LOSS"}


def codes_named_in_code() -> set[str]:
    """Every FINDING_LIKE string constant in hodei/diagnose and hodei/report."""
    found: set[str] = set()
    for path in [*ROOT.glob("hodei/diagnose/*.py"), *ROOT.glob("hodei/report/*.py")]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and re.fullmatch(r"[A-Z]+(_[A-Z]+)+", node.value)
            ):
                found.add(node.value)
    return found - NOT_FINDINGS


def test_there_are_two_languages_each_with_a_template() -> None:
    assert LANGS == ("en", "es")
    for lang in LANGS:
        assert (ROOT / "hodei/report/templates" / f"report.{lang}.md.j2").is_file(), lang


@pytest.mark.parametrize("lang", LANGS)
def test_every_finding_has_every_field_in_every_language(lang: str) -> None:
    findings = texts(lang).findings
    assert set(findings) == set(FINDING_COMPONENT), lang
    for code, t in findings.items():
        assert t.title and t.root_cause and t.causes and t.modules and t.actions, code
        assert all(c for c in t.causes) and all(a.text for a in t.actions), code


def test_no_language_has_a_code_the_others_lack() -> None:
    first = texts(LANGS[0])
    for lang in LANGS[1:]:
        other = texts(lang)
        assert set(other.findings) == set(first.findings), lang
        assert set(other.checklist) == set(first.checklist), lang
        assert set(other.components) == set(first.components), lang
        assert set(other.severity) == set(first.severity), lang
        assert set(other.phrases) == set(first.phrases), lang


def test_every_code_the_doctor_and_the_rules_name_has_its_text() -> None:
    named = codes_named_in_code()
    en = texts("en")
    known = set(en.findings) | set(en.checklist) | set(en.phrases)
    assert named - known == set()
    assert set(ROOT_CAUSE_ORDER) == set(FINDING_COMPONENT)
    assert set(CHECKLIST_COMPONENT) == set(texts("en").checklist)
    assert len(texts("en").checklist) >= 8


@pytest.mark.parametrize("lang", LANGS)
def test_sentences_use_the_same_parameters_in_every_language(lang: str) -> None:
    def params(sentence: str) -> set[str]:
        return set(re.findall(r"{(\w+)}", sentence))

    for code, t in texts(lang).findings.items():
        en = texts("en").findings[code]
        assert params(t.root_cause) == params(en.root_cause), (lang, code)
        assert params(t.title) == params(en.title), (lang, code)


def test_words_are_looked_up_with_an_english_fallback() -> None:
    assert finding_text("DISPATCHER_STALLED", "es").title == "El dispatcher no procesa la cola"
    assert finding_text("NOT_A_CODE", "es").title == "NOT_A_CODE"
    assert checklist_text("DISPATCHER_CYCLES", "en", {"interval": "2 s"}) == (
        "The dispatcher processes the queue every 2 s"
    )
    with pytest.raises(ValueError, match="unsupported report language 'fr'"):
        texts("fr")


def test_catalogue_points_at_modules_that_exist() -> None:
    modules = {m for lang in LANGS for t in texts(lang).findings.values() for m in t.modules}
    missing = sorted(m for m in modules if not (ROOT / m).exists())
    assert not missing, missing
