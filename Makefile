VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test install clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/ihs serve --demo --host 127.0.0.1 --port 8080 --database sqlite:///ihs-data/ihs.db

test: $(STAMP)
	$(VENV)/bin/pytest -n 2

clean:
	rm -rf $(VENV) ihs-data
