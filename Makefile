# Two set-up commands (README): `make demo` runs the main job, `make test` runs the tests.
# Both build .venv from nothing. torch is pinned to the CPU build 2.13.0 in the same pip call so
# that the project's looser torch range does not pull a multi-GB CUDA build.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RAY_STAMP := $(VENV)/.installed-ray

.PHONY: venv test lint demo smoke proto bench clean gpu-campaign gpu-campaign-dry \
	gpu-calibrate-check gpu-calibrate-check-dry

venv: $(STAMP)

# One pip call each: torch pinned in the same resolve as the project (one resolve, one
# editable build).
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0 -e '.[dev]'
	touch $(STAMP)

# The tests also run the Ray executor on a local Ray instance: they need the ray extra. A fresh
# clone installs everything in one go (not dev first, then dev and ray again).
$(RAY_STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet torch==2.13.0 -e '.[dev,ray]'
	touch $(STAMP) $(RAY_STAMP)

# Two workers (pytest-xdist), each test file whole on one worker so that its module-scoped
# fixtures (a fitted predictor, a Ray instance, a server) are built once; TEST_WORKERS=0 runs
# everything in one process.
TEST_WORKERS ?= 2
test: $(RAY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

smoke: venv
	$(BIN)/joulecast collect --plan smoke --device cpu --data synthetic --db runs/smoke.db --resume
	$(BIN)/joulecast export --db runs/smoke.db --format csv --out runs/smoke.csv

# The GPU campaign: one command inside a 7-minute budget, store and identity in OUT.
# On the device machine run it with that machine's python: PYTHONPATH=. python3 -m collector.campaign
OUT ?= runs/gpu-campaign
gpu-campaign:
	PYTHONPATH=. python3 -m collector.campaign --out $(OUT)

gpu-campaign-dry: venv
	$(BIN)/python -m collector.campaign --device cpu --meter cpu-time --plans smoke \
		--repeats 1 --out runs/gpu-campaign-dry

# On a lent GPU: joulecast calibrate (its suite, ~3 min), then the paper's sweep the same day
# (one repeat, timed windows of 2 s) to judge the calibration against; ~9 min in all, two
# commands that can also be sent to the device machine one at a time. Score it here with
#   PYTHONPATH=. python examples/zeus/score_calibration.py --h200 OUT/measurements.db \
#       --h200-suite OUT/calibrate.db
# Both stores' rows are named by the GPU's catalog id (NVML's name looked up: h200, h100-sxm);
# GPU=NAME names them otherwise (a catalogued GPU's id is refused for another GPU's rows).
GPU ?=
HW = $(if $(GPU),--hardware $(GPU))
gpu-calibrate-check:
	mkdir -p $(OUT)/artifacts/transfer
	cp artifacts/transfer/gpu-training.json $(OUT)/artifacts/transfer/
	PYTHONPATH=. python3 -m joulecast.cli calibrate --device cuda $(HW) \
		--db $(OUT)/calibrate.db --artifacts $(OUT)/artifacts --budget-s 180
	PYTHONPATH=. python3 -m collector.campaign --out $(OUT) --plans paper --repeats 1 \
		--window-seconds 2 --budget-s 320 --meter nvml $(HW)

# The same two commands here, without a GPU: a replayed T4 trace (its rows and calibration are
# named replay-t4_calibrate, never a GPU's) and the cpu-time estimate (this CPU's id).
gpu-calibrate-check-dry: venv
	mkdir -p runs/calibrate-check-dry/artifacts/transfer
	cp artifacts/transfer/gpu-training.json runs/calibrate-check-dry/artifacts/transfer/
	$(BIN)/python -m joulecast.cli calibrate --device cpu --meter replay \
		--trace tests/data/traces/t4_calibrate.json --window-s 0.1 \
		--repeats 1 --idle-s 0.05 --db runs/calibrate-check-dry/calibrate.db \
		--artifacts runs/calibrate-check-dry/artifacts
	$(BIN)/python -m collector.campaign --out runs/calibrate-check-dry --device cpu \
		--meter cpu-time --plans paper --samples 16 --repeats 1 --budget-s 60

demo: venv
	$(BIN)/python -m joulecast.demo

proto: venv
	$(BIN)/python -m rpc.gen_protos

bench: venv
	$(BIN)/python benchmarks/bench_profiler.py
	$(BIN)/python benchmarks/bench_meter_overhead.py
	$(BIN)/python benchmarks/bench_server.py
	$(BIN)/python benchmarks/bench_layer_flood.py
	$(BIN)/python benchmarks/bench_cli.py
	$(BIN)/python benchmarks/bench_weightless.py --compare
	$(BIN)/python benchmarks/bench_retrain.py
	$(BIN)/python benchmarks/bench_features.py
	-$(BIN)/python benchmarks/bench_executor.py  # needs the ray extra

clean:
	rm -rf $(VENV) runs
