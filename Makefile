# Two commands on a fresh machine:  make demo  |  make test
# Each creates .venv if missing and installs what it needs (re-installs when pyproject.toml changes).
PY ?= python3
VENV ?= .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.lossparity-installed
# CPU Linux without a GPU: pin the CPU wheel first, so no dependency pulls a multi-GB CUDA build.
# GPU users keep their own torch: `make test TORCH_PIN=` (pyproject.toml only says torch>=2.13,<2.15).
TORCH_PIN ?= $(shell if [ "$$(uname -s)" = Linux ] && ! command -v nvidia-smi >/dev/null 2>&1; then echo torch==2.13.0; fi)
# Two pytest-xdist workers (the CI machine has 2 cores); the quick scenario report the slow tests
# read runs once, in the background from collection on (conftest.py). PYTEST_WORKERS=0: one process.
PYTEST_WORKERS ?= 2
PYTEST_ARGS ?= $(if $(filter 0,$(PYTEST_WORKERS)),,-n $(PYTEST_WORKERS))

.PHONY: demo test test-fast golden golden-check docs docs-site clean install bench

install: $(STAMP)

$(VPY):
	$(PY) -m venv $(VENV)

$(STAMP): pyproject.toml | $(VPY)
	$(VPY) -m pip install -q --upgrade pip
	@if [ -n "$(TORCH_PIN)" ]; then echo "pip install $(TORCH_PIN)"; $(VPY) -m pip install -q "$(TORCH_PIN)"; fi
	$(VPY) -m pip install -q -e ".[all]"
	@touch $@

demo: $(STAMP)
	@$(VPY) -m lossparity.demo

# The whole suite (slow/ddp included). pytest's exit code 5 ("no tests ran") is a failure.
test: $(STAMP)
	@$(VPY) -m pytest --durations=20 $(PYTEST_ARGS); rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

test-fast: $(STAMP)
	$(VPY) -m pytest -m "not slow and not ddp" $(PYTEST_ARGS)

golden: $(STAMP)
	$(VPY) -m lossparity.make_golden

golden-check: $(STAMP)
	$(VPY) -m lossparity.make_golden --check

# The generated pages, README's catalog, the benchmark summaries and plots (--check: CI's test_docs.py)
docs: $(STAMP)
	$(VPY) -m lossparity.docs

# The documentation site (mkdocs.yml) into build/site, warnings as errors; installs the `docs` extra.
DOCS_STAMP := $(VENV)/.lossparity-docs-installed
$(DOCS_STAMP): pyproject.toml | $(STAMP)
	$(VPY) -m pip install -q -e ".[docs]"
	@touch $@

docs-site: $(DOCS_STAMP)
	NO_MKDOCS_2_WARNING=1 TF_CPP_MIN_LOG_LEVEL=3 $(VPY) -m mkdocs build --strict -d build/site

# The wheel as a user gets it (.ci/wheel_smoke.sh, ~5 min): built, then installed into fresh
# [torch]-only, [tf]-only and [all] virtualenvs outside the repository and smoke-tested there.
.PHONY: wheel-smoke
wheel-smoke: $(STAMP)
	PY="$(PY)" BUILD_PY="$(VPY)" TORCH_PIN="$(TORCH_PIN)" .ci/wheel_smoke.sh

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis build *.egg-info

# Speed/memory of every loss against its peers (BENCHMARKS.md); MONAI peers need `pip install --no-deps monai`.
bench: $(STAMP)
	$(VPY) -m lossparity.bench --quick --fused --json out/bench.json
	$(VPY) -m lossparity.bench_loop --quick --json out/bench_loop.json

# Scenario report (lossparity/report.py): every scenario in both frameworks, mean ± std over seeds,
# written to $(REPORT_OUT)/report.md with its plots. Quick runs by default (~1 min per scenario,
# framework and seed on 2 CPU cores); the seeds' full runs: make report REPORT_ARGS="--seeds 5"
REPORT_OUT ?= build/report
REPORT_ARGS ?= --quick --seeds 5
.PHONY: report
report: $(STAMP)
	$(VPY) -m lossparity.report --out $(REPORT_OUT) $(REPORT_ARGS)

# The tested version matrix (noxfile.py, docs/versions.md): every session builds its own virtualenv
# under .matrix/envs and runs the whole suite as `make test` does. SESSION=lowest|newest|newest-torch
# runs one; MATRIX_ARGS go to pytest (MATRIX_ARGS="-m 'not slow'"); MATRIX_FRESH=1 rebuilds the
# virtualenvs. nox itself lives in .matrix/tools, outside the project's .venv.
MATRIX_TOOLS ?= .matrix/tools
SESSION ?=
MATRIX_ARGS ?=
MATRIX_FRESH ?=
.PHONY: test-matrix
test-matrix:
	@test -x $(MATRIX_TOOLS)/bin/nox || { $(PY) -m venv $(MATRIX_TOOLS) && $(MATRIX_TOOLS)/bin/python -m pip install -q "nox>=2025.2.9"; }
	TORCH_PIN="$(TORCH_PIN)" PYTEST_WORKERS="$(PYTEST_WORKERS)" $(MATRIX_TOOLS)/bin/nox $(if $(SESSION),-s $(SESSION)) $(if $(MATRIX_FRESH),--no-reuse-existing-virtualenvs) -- $(MATRIX_ARGS)
