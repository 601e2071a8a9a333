# make lab: set everything up and serve JupyterLab on notebooks/.
# make test: set everything up and run lint, type checks, unit, kernel and notebook tests.
# make test-kernels: run the tests marked `kernels` here and on other kernels under QEMU
#   (KERNELS: Debian kernel packages, default linux-image-amd64; see tests/vm/lane.py).
# All are idempotent: a second run installs nothing.

VENV   := .venv
PY     := $(VENV)/bin/python
PYTHON ?= python3

.PHONY: setup lab test test-kernels lint doctor system-deps

system-deps:
	@bash scripts/install-system-deps

$(PY):
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed-test: pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test,browser,cluster]'
	@touch $@

$(VENV)/.installed-lab: pyproject.toml | $(PY)
	$(PY) -m pip install -q -e '.[test,browser,lab]'
	@touch $@

# doctor --fix mounts tracefs/bpffs and links kernel headers when the kernel has none.
doctor: system-deps $(VENV)/.installed-test
	$(PY) -m bpfnb doctor --fix

setup: doctor

lint: $(VENV)/.installed-test
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: setup lint
	$(PY) -m pytest tests notebooks --nbval --nbval-sanitize-with notebooks/sanitize.cfg

# A failed install is reported, not fatal: the lane then names what is missing, and fails only
# under BPFNB_REQUIRE_KERNEL=1.
test-kernels: setup
	-@bash scripts/install-kernel-test-deps $(VENV)
	$(PY) -m tests.vm.lane $(KERNELS)

lab: setup $(VENV)/.installed-lab
	$(PY) -m jupyter lab --allow-root --no-browser --ip=127.0.0.1 --notebook-dir=notebooks
