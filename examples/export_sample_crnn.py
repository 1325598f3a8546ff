"""Export the small CRNN that the demo sends to the server: ``examples/sample_crnn.onnx``.

    .venv/bin/python examples/export_sample_crnn.py [--out PATH]

One conv block (64 channels) and one GRU layer (64 units), with its weights (about 100 KB):
``joulecast predict`` strips them before upload, as it would for any real model.
"""

from __future__ import annotations

import argparse
import warnings
from pathlib import Path

import torch

from collector.models import INPUT_SHAPE, ModelConfig, build_model

CONFIG = ModelConfig("crnn", (1, 1), (64, 64))
DEFAULT_OUT = Path(__file__).resolve().parent / "sample_crnn.onnx"


def export(out: Path = DEFAULT_OUT) -> Path:
    torch.manual_seed(0)
    model = build_model(CONFIG).eval()
    example = torch.zeros(1, *INPUT_SHAPE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (example,),
            str(out),
            dynamo=False,
            do_constant_folding=False,
            input_names=["x"],
            output_names=["y"],
            dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}},
            opset_version=17,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    out = export(parser.parse_args().out)
    print(f"{CONFIG.config_id}: wrote {out} ({out.stat().st_size:,} bytes)")


if __name__ == "__main__":
    main()
