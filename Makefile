# Two set-up commands (README): `make demo` runs the main job, `make test` runs the tests.
# Both build .venv from nothing. torch's CPU build is installed first so that the project's
# looser torch range does not pull a multi-GB CUDA build.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RAY_STAMP := $(VENV)/.installed-ray

.PHONY: venv test lint demo smoke proto bench clean gpu-campaign gpu-campaign-dry

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The tests also run the Ray executor on a local Ray instance: they need the ray extra.
$(RAY_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,ray]'
	touch $(RAY_STAMP)

test: venv $(RAY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

smoke: venv
	$(BIN)/joulecast collect --plan smoke --device cpu --data synthetic --db runs/smoke.db --resume
	$(BIN)/joulecast export --db runs/smoke.db --format csv --out runs/smoke.csv

# The GPU campaign (issue 15): one command inside a 7-minute budget, store and identity in OUT.
# On the device machine run it with that machine's python: PYTHONPATH=. python3 -m collector.campaign
OUT ?= runs/gpu-campaign
gpu-campaign:
	PYTHONPATH=. python3 -m collector.campaign --out $(OUT)

gpu-campaign-dry: venv
	$(BIN)/python -m collector.campaign --device cpu --meter cpu-time --plans smoke \
		--repeats 1 --out runs/gpu-campaign-dry

demo: venv
	$(BIN)/python -m joulecast.demo

proto: venv
	$(BIN)/python -m server.gen_protos

bench: venv
	$(BIN)/python benchmarks/bench_profiler.py
	$(BIN)/python benchmarks/bench_meter_overhead.py
	$(BIN)/python benchmarks/bench_server.py
	$(BIN)/python benchmarks/bench_cli.py
	$(BIN)/python benchmarks/bench_weightless.py --compare
	-$(BIN)/python benchmarks/bench_executor.py  # needs the ray extra

clean:
	rm -rf $(VENV) runs
