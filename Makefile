# Two commands do everything (see README.md):
#   make lab    set up .venv and open JupyterLab on notebooks/
#   make test   set up .venv and run the whole test suite (pytest, nbval over notebooks/)
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin

.PHONY: lab test bench notebooks clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("smtplab needs Python 3.11 or newer" if sys.version_info < (3, 11) else 0)'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[lab,test]"
	touch $@

# Terminals opened in JupyterLab must find `smtplab` (the venv's console script): put the venv first on PATH,
# and start them as plain interactive shells. (When JupyterLab's stdout is not a terminal, it starts login
# shells, and a login shell's /etc/profile resets PATH.) LAB_ARGS adds options, e.g. LAB_ARGS=--no-browser.
LAB_ARGS ?=
lab: $(BIN)/.installed
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/jupyter lab notebooks/ $(if $(filter 0,$(shell id -u)),--allow-root) \
	    --ServerApp.terminado_settings="shell_command=$${SHELL:-/bin/sh}" $(LAB_ARGS)

test: $(BIN)/.installed
	$(BIN)/python -m pytest

notebooks: $(BIN)/.installed
	$(BIN)/python tools/refresh_notebooks.py

bench: $(BIN)/.installed
	$(BIN)/python benchmarks/bench.py

clean:
	rm -rf $(VENV) *.egg-info
