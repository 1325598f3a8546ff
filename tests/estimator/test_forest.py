"""The trees answer through joulecast's reader of XGBoost's model file, bit for bit as XGBoost.

Every shipped model file is compared with XGBoost itself on rows placed at, just below and just
above each split threshold (one float32 step: a threshold read one step off, or a ``<=`` for a
``<``, changes the answer there), with missing values and with base margins; so is a model
fitted here. Loading and answering for every shipped hardware must then import no XGBoost,
pandas, SciPy or scikit-learn.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from testkit import run_python

from estimator.predictors.forest import Forest, ForestFormatError, LazyForest

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = sorted((ROOT / "artifacts" / "predictors").glob("*/*/*.xgb.json"))


def rows_at_thresholds(forest: Forest, n_rows: int, seed: int) -> np.ndarray:
    """Rows whose every value is a split threshold of the model or one float32 step beside it;
    some values missing (NaN)."""
    rng = np.random.default_rng(seed)
    cuts = np.array(
        sorted(
            {t.threshold[i] for t in forest.trees for i in range(len(t.left)) if t.left[i] >= 0}
        ),
        dtype=np.float32,
    )
    values = np.concatenate(
        [cuts, np.nextafter(cuts, np.float32(-np.inf)), np.nextafter(cuts, np.float32(np.inf))]
    )
    x = rng.choice(values, size=(n_rows, forest.n_features)).astype(np.float64)
    x[rng.random(x.shape) < 0.05] = np.nan
    return x


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.dtype == b.dtype == np.float32 and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def booster(data: bytes) -> xgb.Booster:
    model = xgb.Booster(params={"nthread": 1})
    model.load_model(bytearray(data))
    return model


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: f"{p.parts[-3]}/{p.name}")
def test_shipped_trees_answer_as_xgboost(path: Path) -> None:
    data = path.read_bytes()
    forest = Forest.from_json(data)
    reference = booster(data)
    x = rows_at_thresholds(forest, 40 if len(forest.trees) > 200 else 400, seed=len(data))
    base = np.random.default_rng(1).normal(0.0, 3.0, len(x))
    for margin in (None, base):
        expected = reference.inplace_predict(
            x, predict_type="margin", base_margin=margin, validate_features=False
        )
        assert same_bits(forest.predict_margin(x, margin), expected)
    # the layer-sum model asks DMatrix-based prediction (its own path in XGBoost)
    matrix = xgb.DMatrix(x, feature_names=reference.feature_names)
    assert same_bits(LazyForest(data).predict_margin(x), reference.predict(matrix))


def test_a_fresh_fit_answers_as_xgboost() -> None:
    """Ties, constant columns and a learned base score (``boost_from_average``)."""
    rng = np.random.default_rng(7)
    x = np.round(rng.normal(size=(300, 5)), 1)
    x[:, 4] = 1.0
    y = np.sin(x[:, 0]) + x[:, 1] * x[:, 2] + 3.0
    trained = xgb.train(
        {"max_depth": 4, "eta": 0.3, "nthread": 1, "objective": "reg:squarederror"},
        xgb.DMatrix(x, label=y),
        num_boost_round=30,
    )
    forest = Forest.from_json(bytes(trained.save_raw(raw_format="json")))
    assert forest.base_score != 0.0
    probe = np.vstack([x, rows_at_thresholds(forest, 200, seed=3)])
    assert same_bits(forest.predict_margin(probe), trained.inplace_predict(probe))


def test_other_kinds_of_model_are_refused() -> None:
    x = np.random.default_rng(0).normal(size=(50, 3))
    logistic = xgb.train(
        {"objective": "binary:logistic", "nthread": 1},
        xgb.DMatrix(x, label=(x[:, 0] > 0).astype(float)),
        num_boost_round=2,
    )
    with pytest.raises(ForestFormatError, match="objective"):
        Forest.from_json(bytes(logistic.save_raw(raw_format="json")))
    model = json.loads(SHIPPED[0].read_bytes())
    model["learner"]["gradient_booster"]["model"]["trees"][0]["split_type"][0] = 1
    with pytest.raises(ForestFormatError, match="categorical"):
        Forest.from_json(json.dumps(model).encode())
    model["learner"]["gradient_booster"]["model"]["trees"][0]["left_children"][0] = 10**6
    with pytest.raises(ForestFormatError):
        Forest.from_json(json.dumps(model).encode())
    with pytest.raises(ForestFormatError, match="not an XGBoost JSON model"):
        Forest.from_json(b'{"learner": 1}')


_ANSWER_ALL = """
import json, sys
from pathlib import Path
from estimator.service import PredictorRegistry, in_process_layer_answer
from joulecast.graph import profile_graph
graph = Path(sys.argv[1]).read_bytes()
registry = PredictorRegistry(Path(sys.argv[2]))
profile = profile_graph(graph)
answers = {
    hw: registry.predict(profile, batch_size=8, samples=1578, epochs=1, hardware=hw,
                         layer_answer=in_process_layer_answer(graph)).hardware
    for hw in registry.hardware()
}
heavy = sorted(m for m in ("xgboost", "pandas", "scipy", "sklearn", "torch") if m in sys.modules)
print(json.dumps({"answered": sorted(answers), "heavy": heavy}))
"""


def test_answering_for_every_shipped_hardware_imports_no_fitting_library() -> None:
    done = run_python(
        "-c", _ANSWER_ALL, str(ROOT / "examples" / "sample_crnn.onnx"), str(ROOT / "artifacts")
    )
    result = json.loads(done.stdout)
    shipped = sorted(p.parent.name for p in (ROOT / "artifacts" / "predictors").glob("*/CURRENT"))
    assert result["answered"] == shipped
    assert result["heavy"] == []


def test_many_rows_at_once_give_the_same_bits_as_one_row_at_a_time() -> None:
    """A graph's 49,000 nodes go through the forest in numpy, a tree over every row at once;
    one-row answers go through plain Python: both must be the same float32 bits."""
    import xgboost as xgb

    from estimator.predictors.forest import VECTOR_ROWS, Forest

    rng = np.random.default_rng(3)
    x = rng.normal(size=(400, 6)).astype(np.float32)
    x[::7, 2] = np.nan
    y = np.sin(x[:, 0]) + np.nan_to_num(x[:, 2]) * x[:, 1]
    params = {"max_depth": 6, "objective": "reg:squarederror", "nthread": 1, "seed": 0}
    booster = xgb.train(params, xgb.DMatrix(x, label=y), num_boost_round=80)
    forest = Forest.from_json(bytes(booster.save_raw(raw_format="json")))
    assert len(x) >= VECTOR_ROWS
    many = forest.predict_margin(x)
    one_by_one = np.concatenate([forest.predict_margin(x[i : i + 1]) for i in range(len(x))])
    assert np.array_equal(many.view(np.int32), one_by_one.view(np.int32))
    reference = booster.inplace_predict(x, predict_type="margin").astype(np.float32)
    assert np.array_equal(many.view(np.int32), reference.view(np.int32))
