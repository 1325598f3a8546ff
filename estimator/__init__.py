"""The estimator: graph profiling (ONNX -> features), predictors, evaluation, artifacts."""
