# make demo: forge the bundled sample through the local server's API.  make test: run every test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

NODE_STAMP := node_modules/.installed

.PHONY: demo test server clean space

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) demo.py

# The Khronos glTF-Validator for the GLB tests (skipped, with a reason, where npm is missing).
$(NODE_STAMP): package.json package-lock.json
	if command -v npm >/dev/null 2>&1; then npm ci --silent --no-audit --no-fund && touch $(NODE_STAMP); fi

test: $(STAMP) $(NODE_STAMP)
	$(PY) -m pytest -q

# space: assemble exactly what to push to the Hugging Face Space into dist/space/ (checked).
space: $(STAMP)
	$(PY) tools/make_space.py --out dist/space

server: $(STAMP)
	$(PY) -m server

clean:
	rm -rf $(VENV) workspace dist out node_modules
