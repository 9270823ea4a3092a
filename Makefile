# make test | make demo | make bench -- each builds .venv once (reused afterwards).
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
export NO_ALBUMENTATIONS_UPDATE := 1
export OMP_NUM_THREADS ?= 2
# Keep freed tensor memory in glibc's heap (see depthsense/runtime.py): CPU training and
# tests run ~15-20% faster without the page-fault churn.
export MALLOC_MMAP_THRESHOLD_ ?= 33554432
export MALLOC_TRIM_THRESHOLD_ ?= 1073741824
export MALLOC_TOP_PAD_ ?= 67108864

.PHONY: test demo bench venv clean pretrained

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev,onnx]'
	touch $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q

demo: $(STAMP)
	$(PY) -m depthsense.demo $(DEMO_ARGS)

# Rebuild the shipped model from scratch (seeded; see depthsense/experiments/pretrain.py and the README).
pretrained: $(STAMP)
	$(PY) -m depthsense.pretrain --install $(PRETRAIN_ARGS)

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
