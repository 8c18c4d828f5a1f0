"""The documentation generated from the registry and the committed benchmark run is current (one
page per loss, README's catalog, the error table, the benchmark summaries and plots), the site's
navigation lists every loss page, and README stays a short landing page. The site itself is
built with warnings as errors by ``make docs-site`` (CI: ``.ci/run``)."""
import os
import re
import subprocess
import sys

import pytest

import spec
from lossparity import docs

pytestmark = pytest.mark.project


@pytest.mark.parametrize("path", list(docs.DOCUMENTS), ids=lambda p: p.name)
def test_generated_sections_are_current(path):
    current = path.read_text()
    assert docs.render(current, docs.DOCUMENTS[path], path.name) == current, (
        f"{path.name} is stale: run python -m lossparity.docs")


def test_generated_pages_are_current():
    assert docs.stale() == [], "run python -m lossparity.docs"


def test_every_loss_has_a_page_in_the_navigation():
    nav = (docs.ROOT / "mkdocs.yml").read_text()
    missing = [name for name in spec.names() if f"losses/{name}.md" not in nav]
    assert not missing, f"add these loss pages to the nav of mkdocs.yml: {missing}"


def test_problem_links_point_at_anchors_of_the_problems_page():
    page = (docs.DOCS / "problems.md").read_text()
    anchors = set(re.findall(r"\{#([a-z0-9-]+)\}", page))
    assert set(docs.PROBLEMS) <= anchors
    assert {k for keys in docs.LOSS_PROBLEMS.values() for k in keys} <= set(docs.PROBLEMS)
    for path in list(docs.DOCS.rglob("*.md")) + [docs.README, docs.BENCHMARKS]:
        for anchor in re.findall(r"problems\.md#([a-z0-9-]+)", path.read_text()):
            assert anchor in anchors, f"{path.name} links problems.md#{anchor}, which does not exist"


def test_readme_is_a_short_landing_page_starting_with_the_two_commands():
    text = docs.README.read_text()
    assert len(text.encode()) < 10_000, f"README.md is {len(text.encode())} bytes; move details into docs/"
    head = text[:1500]
    assert "make demo" in head and "make test" in head


def test_history_is_named_by_commits_or_versions_not_by_tracker_numbers():
    """Outside the page that describes the problems, the documentation names the problem, a
    commit or a version, never a numbered question or a tracker entry (material a user of the
    package does not have)."""
    pattern = re.compile(r"seed 0[0-9]{2}|issue [0-9]+|stop [0-9]+")
    paths = [docs.README, docs.BENCHMARKS, *docs.DOCS.rglob("*.md"), *(docs.ROOT / "examples").rglob("*.md")]
    skip = {"problems.md", "versions.md"}
    found = [f"{p.relative_to(docs.ROOT)}:{i}" for p in paths if p.name not in skip
             for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not found, found


def test_doctest_examples_become_code_blocks_in_the_api_reference():
    text = "Intro.\n\n>>> import spec\n>>> spec.names()[:1]\n['asymmetric_exponential']\n\nAfter."
    assert docs.fence_doctests(text) == (
        "Intro.\n\n```pycon\n>>> import spec\n>>> spec.names()[:1]\n['asymmetric_exponential']\n```\n\nAfter.")


def test_the_docs_check_command_passes():
    out = subprocess.run([sys.executable, "-m", "lossparity.docs", "--check"], cwd=docs.ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_keras_string_names_on_the_loss_pages_follow_tf_impl():
    pytest.importorskip("keras")
    from tf_impl import keras_names

    built_in = keras_names.BUILT_IN["losses"] | keras_names.BUILT_IN["regularizers"]
    assert docs.KERAS_BUILT_IN == {name for name in spec.names() if name in built_in}


def test_older_benchmark_peer_labels_are_named_by_their_answer():
    numbered = "seed {} {}".format  # an older run's label: the question's number, then the code's name
    assert docs.relabel_peer(numbered("003", "iouloss (transcribed)")) == "iouloss (segmentation answer, transcribed)"
    assert docs.relabel_peer(numbered("004", "kl_divergence")) == "kl_divergence (KL-sparsity answer)"
    assert docs.relabel_peer("F.mse_loss") == "F.mse_loss"


@pytest.mark.slow
@pytest.mark.parametrize("page", ["README.md", "docs/index.md"])
def test_the_first_examples_run(page):
    """README's and the getting-started page's PyTorch and Keras examples run as written."""
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    blocks = re.findall(r"```python\n(.*?)```", (docs.ROOT / page).read_text(), re.S)
    assert len(blocks) >= 2
    out = subprocess.run([sys.executable, "-c", "\n".join(blocks)], cwd=docs.ROOT, capture_output=True,
                         text=True, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-3000:]


@pytest.mark.slow
def test_the_loss_pages_examples_run():
    """Every loss page's PyTorch and Keras examples (generated from the spec entry) run as written."""
    pytest.importorskip("torch")
    pytest.importorskip("keras")
    code = []
    for name in spec.names():
        page = (docs.LOSSES / f"{name}.md").read_text()
        for block in re.findall(r"    ```python\n(.*?)    ```", page, re.S):
            body = "\n".join(line[4:] for line in block.splitlines())
            code.append(f"try:\n    exec({body!r}, {{}})\nexcept Exception as e:\n"
                        f"    raise SystemExit(f'{name}: {{type(e).__name__}}: {{e}}')")
    assert len(code) == 2 * len(spec.names())
    out = subprocess.run([sys.executable, "-c", "\n".join(code)], cwd=docs.ROOT, capture_output=True, text=True,
                         timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert out.returncode == 0, out.stderr[-3000:]


def test_the_site_hook_renders_every_table_of_the_committed_run():
    page = docs.on_page_markdown(f"# Benchmarks\n\n{docs.BENCH_TABLES}\n")
    assert docs.BENCH_TABLES not in page and "Every row" in page
    assert "segmentation answer" in page  # peers named by their answer


def test_every_scenario_names_a_problem_of_the_problems_page():
    """The scenario report's headings link each scenario's problem (``Scenario.problem``), by an
    anchor the problems page has."""
    from lossparity import scenarios

    for name in scenarios.names():
        assert scenarios.get(name).problem in docs.PROBLEMS, name
