# One entry point for students, instructors and CI. Every target installs what it needs first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: help install lab run html test test-stacks test-hub lint release grade clean

help:
	@echo "make run    install everything, then run every lab notebook in full mode (writes outputs back)"
	@echo "make test   install everything, then run the unit tests and every notebook in fast mode"
	@echo "make lab    install everything, then open JupyterLab on the notebooks"
	@echo "make test-stacks  the tests and notebooks on the Colab, lowest-version and newest stacks (fresh envs)"
	@echo "                  (MODELS=<fast-mode bundle>: the Colab stack's notebooks take their models from it;"
	@echo "                   STACKS=\"colab floor\": only those)"
	@echo "make test-hub  as root: a class on JupyterHub on this machine (deploy/), Linux users, browser login"
	@echo "make html   export the executed notebooks to HTML for grading (build/html/)"
	@echo "make lint   ruff check"
	@echo "make release                 instructors: the student release (solutions stripped) in build/classroom/release/"
	@echo "make grade SUBMISSIONS=DIR   instructors: grade DIR/<student id>/*.ipynb (answers run sandboxed); gradebook, statuses, feedback"

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks/

run: $(STAMP)
	VAE_LAB_MODE=full VAE_LAB_RETRAIN=1 $(BIN)/vae-lab run --write --html build/html

html: $(STAMP)
	$(BIN)/vae-lab html build/html

test: $(STAMP)
	$(BIN)/python -m pytest

test-hub: $(STAMP)
	VAE_LAB_HUB_TEST=1 $(BIN)/python -m pytest tests/test_hub.py -p no:cacheprovider -n 0

test-stacks: $(STAMP)
	$(BIN)/vae-lab stacks $(STACKS) $(if $(MODELS),--models "$(MODELS)")

lint: $(STAMP)
	$(BIN)/ruff check .

release: $(STAMP)
	$(BIN)/vae-lab release --reference vae_lab/released.json

grade: $(STAMP)
	@test -n "$(SUBMISSIONS)" || { echo "usage: make grade SUBMISSIONS=DIR  (DIR holds one folder of notebooks per student)"; exit 2; }
	$(BIN)/vae-lab grade "$(SUBMISSIONS)"

clean:
	rm -rf build .pytest_cache
