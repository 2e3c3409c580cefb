PYTHON ?= python3

.PHONY: install test test-all coverage lint train tensorboard bench gpu-check

install:  ## set up a fresh machine: the CPU build of torch first, then the package and its dev tools
	$(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -e '.[dev]'

test:  ## lint, then the test suite without the slow tests, on two processes (under 3 minutes on 2 cores)
	$(PYTHON) -m ruff check makemore tests benchmarks examples
	$(PYTHON) -m pytest -m "not slow" -n 2

test-all:  ## lint, then every test, the slow ones too (a real torch.compile)
	$(PYTHON) -m ruff check makemore tests benchmarks examples
	$(PYTHON) -m pytest

coverage:  ## the test suite (without the slow tests) with branch coverage of the package, per file
	$(PYTHON) -m pytest -m "not slow" --cov --cov-report=term-missing:skip-covered

lint:
	$(PYTHON) -m ruff check makemore tests benchmarks examples

train:  ## train the default MLP on the standard names.txt beside the checkout
	makemore --config configs/mlp.yaml --input ../shared/data/names.txt --work-dir out/mlp

tensorboard:
	tensorboard --logdir out

bench:  ## every benchmark; results go to benchmarks/results/*.json
	$(PYTHON) -m benchmarks.run_all

gpu-check:  ## on a machine with a CUDA GPU: train, resume, evaluate and sample every model there, load it on the CPU
	$(PYTHON) -m benchmarks.gpu_check
