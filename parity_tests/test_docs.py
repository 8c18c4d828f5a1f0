"""README's catalog and error tables are generated from the registry and must be current."""
import pytest

from scripts import docs

pytestmark = pytest.mark.project


def test_readme_generated_sections_are_current():
    current = docs.README.read_text()
    assert docs.render(current) == current, "README.md is stale: run python -m scripts.docs"


def test_readme_starts_with_the_two_commands():
    head = docs.README.read_text()[:1500]
    assert "make demo" in head and "make test" in head
