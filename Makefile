# Two commands do all set-up on a fresh machine:
#   make demo   install into .venv, then run the sample monitoring project end to end
#   make test   install into .venv (with test extras), then run the test suite
PYTHON ?= python3
VENV ?= .venv
STAMP := $(VENV)/.installed

export GX_ANALYTICS_ENABLED := false
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS := 120
export DO_NOT_TRACK := 1

.PHONY: install demo test bench-sensor clean

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mrv demo

test: $(STAMP)
	$(VENV)/bin/pytest -q

bench-sensor: $(STAMP)
	$(VENV)/bin/python bench/sensor.py

clean:
	rm -rf .mrv .pytest_cache
