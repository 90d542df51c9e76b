"""Every rule's examples are tests: a Bad fires its code (and only the codes it declares), a Good fires nothing."""

from __future__ import annotations

import pytest

from asyncmigrate.rules.base import Bad, Good, all_rules
from tests.helpers import findings

CASES = [
    pytest.param(cls, i, ex, id=f"{code}-{'bad' if isinstance(ex, Bad) else 'good'}-{i}")
    for code, cls in all_rules().items()
    for i, ex in enumerate(cls.examples)
]


@pytest.mark.parametrize("cls,index,example", CASES)
def test_example(cls, index, example):
    found = findings(example.source)
    codes = [f.code for f in found]
    if isinstance(example, Bad):
        assert codes.count(cls.code) == example.count, found
        unexpected = set(codes) - {cls.code} - set(example.also)
        assert not unexpected, f"example also fires {unexpected}: {found}"
    else:
        assert isinstance(example, Good)
        assert found == [], found
