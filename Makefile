# One command for students and CI: `make test` creates .venv, installs everything, runs the suite.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
# The CPU build of torch for CPU machines and CI (pinned here, ranges in pyproject.toml).
TORCH_PIN ?= torch==2.13.0
NOTEBOOKS := $(wildcard notebooks/*.ipynb notebooks/solutions/*.ipynb)
# CPU threads of every notebook kernel, when outputs are stored (editions) and when they are
# checked (nbval): a float sum over 1 or 8 threads can differ from one over 2 in the last
# digits, so both sides use the same count, CI's 2 cores, on any machine.
NB_THREADS ?= 2

.PHONY: install test test-lib test-notebooks lab editions check-editions figures demo learning-check bench clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

test: test-lib test-notebooks

test-lib: install
	$(PY) -m pytest tests -q

test-notebooks: install
ifneq ($(strip $(NOTEBOOKS)),)
	COURSE_LIB_CI=1 OMP_NUM_THREADS=$(NB_THREADS) MKL_NUM_THREADS=$(NB_THREADS) \
		$(PY) -m pytest -q -p no:python --nbval-lax --nbval-current-env $(NOTEBOOKS)
else
	@echo "no notebooks yet"
endif

editions: install  ## regenerate the student editions from notebooks/solutions and re-run both
	OMP_NUM_THREADS=$(NB_THREADS) MKL_NUM_THREADS=$(NB_THREADS) $(PY) scripts/make_editions.py --execute --jobs 1

check-editions: install  ## fail when the student editions are out of step with the solutions
	$(PY) scripts/make_editions.py --check

figures: install  ## redraw lessons/figures from course_lib
	$(PY) scripts/make_figures.py

demo: install  ## inpaint data/samples with the CPU-trained toy model; writes outputs/demo.png
	OMP_NUM_THREADS=2 $(PY) scripts/demo.py

learning-check: install  ## train toy_cpu for a few minutes and compare hole PSNR with non-learned fills
	OMP_NUM_THREADS=2 $(PY) scripts/learning_check.py --minutes 8

bench: install  ## speed and memory figures (ratios against baselines in the same run)
	$(PY) scripts/benchmark.py --quick

lab: install
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .pytest_cache
