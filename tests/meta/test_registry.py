"""The rule registry is complete and self-consistent; generated docs are up to date."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import asyncmigrate.rules as rules_pkg
from asyncmigrate.report.docs import SECTIONS, rules_markdown, sections
from asyncmigrate.rules.base import CATEGORIES, Bad, Good, Rule, all_rules

ROOT = Path(__file__).resolve().parents[2]


def test_codes_unique_and_well_formed():
    rules = all_rules()
    assert len(rules) >= 15
    names = [cls.name for cls in rules.values()]
    assert len(names) == len(set(names)), "rule names must be unique"
    for code, cls in rules.items():
        assert re.fullmatch(r"ASM\d{3}", code), code
        assert re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", cls.name), cls.name
        assert cls.category in CATEGORIES, (code, cls.category)


def test_every_rule_has_bad_and_good_examples_and_doc_sections():
    for code, cls in all_rules().items():
        assert any(isinstance(e, Bad) for e in cls.examples), f"{code} has no Bad example"
        assert any(isinstance(e, Good) for e in cls.examples), f"{code} has no Good example"
        s = sections(cls)
        for head in SECTIONS:
            assert s.get(head), f"{code} docstring lacks '{head}'"


def test_every_rule_module_is_registered():
    """Importing every module under rules/ registers nothing that all_rules() misses."""
    for info in pkgutil.iter_modules(rules_pkg.__path__):
        importlib.import_module(f"asyncmigrate.rules.{info.name}")
    assert set(Rule.registry) == set(all_rules())


def test_generated_rule_docs_are_current():
    doc = ROOT / "docs" / "rules.md"
    assert doc.read_text(encoding="utf-8") == rules_markdown(all_rules()), (
        "docs/rules.md is stale: run `asyncmigrate rules --format markdown > docs/rules.md`"
    )
