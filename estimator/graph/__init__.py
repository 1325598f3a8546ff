"""ONNX graph -> GraphProfile (the one featurizer used at fit time and at serving time)."""
