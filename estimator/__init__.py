"""The estimator: features of profiled graphs, predictors, evaluation, artifacts; serving
(``service``) apart from fitting and publishing (``publish``)."""
