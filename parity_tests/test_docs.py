"""README's catalog and error tables and BENCHMARKS.md's performance notes are generated from the
registry and must be current."""
import pytest

from lossparity import docs

pytestmark = pytest.mark.project


@pytest.mark.parametrize("path", list(docs.DOCUMENTS), ids=lambda p: p.name)
def test_generated_sections_are_current(path):
    current = path.read_text()
    assert docs.render(current, docs.DOCUMENTS[path], path.name) == current, (
        f"{path.name} is stale: run python -m lossparity.docs")


def test_readme_starts_with_the_two_commands():
    head = docs.README.read_text()[:1500]
    assert "make demo" in head and "make test" in head
