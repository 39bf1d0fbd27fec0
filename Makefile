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
# The lowest CPU kernels PyTorch, oneDNN (convolutions) and MKL (matmuls) can be forced to, on
# 1 thread: what an old laptop or a machine without AVX-512 computes. The solution editions are
# checked under it, the student editions under this machine's own kernels on NB_THREADS, both
# against the same stored outputs, so a number that depends on the CPU fails here, not in CI.
PORTABLE_ENV ?= ATEN_CPU_CAPABILITY=default ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2 \
	OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
SOLUTION_NOTEBOOKS := $(wildcard notebooks/solutions/*.ipynb)
STUDENT_NOTEBOOKS := $(wildcard notebooks/*.ipynb)
NBVAL := $(PY) -m pytest -q -p no:python -p no:cacheprovider --nbval-lax --nbval-current-env
# `make test-colab`: a second venv with the widget stack Colab ships (ipywidgets 7.7.1 and the
# IPython and ipykernel it runs on), where scripts/colab_check.py installs course_lib with
# --no-deps as the notebooks' install cell does and runs the widget notebooks.
COLAB_VENV ?= .venv-colab
COLAB_PY := $(COLAB_VENV)/bin/python
COLAB_STACK ?= ipywidgets==7.7.1 ipykernel==6.17.1 ipython==7.34.0 numpy pillow matplotlib "nbval>=0.10"

.PHONY: install test test-lib test-browser test-colab test-notebooks test-notebooks-as lab editions check-editions figures demo learning-check bench gpu-check clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet $(TORCH_PIN)
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

test: test-lib test-notebooks

test-lib: install
	$(PY) -m pytest tests -q

test-browser: install  ## the notebooks' widgets in JupyterLab + headless Chromium (needs `apt-get install chromium`)
	$(PY) -c "import playwright" 2>/dev/null || $(PY) -m pip install --quiet "playwright>=1.40"
	OMP_NUM_THREADS=$(NB_THREADS) MKL_NUM_THREADS=$(NB_THREADS) $(PY) -m pytest tests/browser -m browser -q -rs -s

$(COLAB_VENV)/.installed: Makefile
	test -x $(COLAB_PY) || $(PYTHON) -m venv $(COLAB_VENV)
	$(COLAB_PY) -m pip install --quiet $(TORCH_PIN) $(COLAB_STACK)
	touch $@

test-colab: $(COLAB_VENV)/.installed  ## the widget notebooks under Colab's ipywidgets 7.7.1 and a stand-in google.colab (2 to 4 minutes)
	OMP_NUM_THREADS=$(NB_THREADS) MKL_NUM_THREADS=$(NB_THREADS) $(COLAB_PY) scripts/colab_check.py

test-notebooks: install  ## every notebook under nbval: students on this CPU's kernels, solutions on the lowest
ifneq ($(strip $(NOTEBOOKS)),)
	COURSE_LIB_CI=1 OMP_NUM_THREADS=$(NB_THREADS) MKL_NUM_THREADS=$(NB_THREADS) $(NBVAL) $(STUDENT_NOTEBOOKS)
	COURSE_LIB_CI=1 $(PORTABLE_ENV) $(NBVAL) $(SOLUTION_NOTEBOOKS)
else
	@echo "no notebooks yet"
endif

test-notebooks-as: install  ## reproduce another machine: make test-notebooks-as CPU=avx2 THREADS=1 [NB=notebooks/03_*.ipynb]
	COURSE_LIB_CI=1 ATEN_CPU_CAPABILITY=$(or $(CPU),default) ONEDNN_MAX_CPU_ISA=$(if $(filter avx2,$(CPU)),AVX2,$(if $(filter avx512,$(CPU)),AVX512_CORE,SSE41)) \
		MKL_ENABLE_INSTRUCTIONS=$(if $(filter avx2,$(CPU)),AVX2,$(if $(filter avx512,$(CPU)),AVX512,SSE4_2)) \
		OMP_NUM_THREADS=$(or $(THREADS),1) MKL_NUM_THREADS=$(or $(THREADS),1) $(NBVAL) $(or $(NB),$(NOTEBOOKS))

editions: install  ## regenerate the student editions from notebooks/solutions and re-run both
	OMP_NUM_THREADS=$(NB_THREADS) MKL_NUM_THREADS=$(NB_THREADS) $(PY) scripts/make_editions.py --execute --jobs 1

check-editions: install  ## fail when the student editions (or the README's course map) are out of step with the solutions
	$(PY) scripts/make_editions.py --check

figures: install  ## redraw lessons/figures from course_lib
	$(PY) scripts/make_figures.py

demo: install  ## inpaint data/samples (official Places2 when downloaded, else the CPU-trained toy model); writes outputs/demo.png
	OMP_NUM_THREADS=2 $(PY) scripts/demo.py

learning-check: install  ## train toy_cpu for a few minutes and compare hole PSNR with non-learned fills
	OMP_NUM_THREADS=2 $(PY) scripts/learning_check.py --minutes 8

bench: install  ## speed and memory figures (ratios against references in the same run); JSON=out.json saves them
	$(PY) scripts/benchmark.py --quick $(if $(JSON),--json $(JSON))

gpu-check:  ## on a GPU machine (no install: the image's torch): the README's GPU claims in <= 8 min; JSON=out.json, DRY=1 for a CPU dry run
	PYTHONPATH=. $(PYTHON) scripts/gpu_check.py $(if $(JSON),--json $(JSON)) $(if $(DRY),--dry-run)

lab: install
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) $(COLAB_VENV) .pytest_cache
