PYTHON ?= python3

.PHONY: install test lint train tensorboard bench

install:  ## set up a fresh machine: the CPU build of torch first, then the package and its dev tools
	$(PYTHON) -m pip install torch==2.13.0
	$(PYTHON) -m pip install -e '.[dev]'

test:  ## lint, then the whole test suite
	$(PYTHON) -m ruff check makemore tests benchmarks
	$(PYTHON) -m pytest

lint:
	$(PYTHON) -m ruff check makemore tests benchmarks

train:  ## train the default MLP on the standard names.txt beside the checkout
	makemore --config configs/mlp.yaml --input ../shared/data/names.txt --work-dir out/mlp

tensorboard:
	tensorboard --logdir out

bench:  ## every benchmark; results go to benchmarks/results/*.json
	$(PYTHON) -m benchmarks.run_all
