"""docs/reliability.md's outcome table is the suite's own case list."""

from __future__ import annotations

from tests.conftest import REPO
from tests.reliability.cases import all_cases, table


def test_the_documented_outcome_table_is_the_suites_case_list():
    doc = (REPO / "docs" / "reliability.md").read_text()
    assert table() in doc, "regenerate the table: python -m tests.reliability.cases"
    assert len(all_cases()) >= 60 and len({c.id for c in all_cases()}) == len(all_cases())
