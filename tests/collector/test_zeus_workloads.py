"""The Zeus NSDI '23 workloads rebuilt: published parameter counts, profiles, weightless graphs.

Every graph is exported once per module (DeepSpeech2's trace runs its five LSTMs over 616 steps,
a few seconds on a CPU) and profiled by the profiler that serves predictions.
"""

from __future__ import annotations

import functools
from pathlib import Path

import onnx
import pytest

from collector.zeus_workloads import WORKLOADS, Workload, find_workload, workload_graph
from collector.zeus_workloads import table as zeus_table
from joulecast.errors import InvalidArgument
from joulecast.graph import GraphProfile, profile_graph
from joulecast.store import MeasurementStore
from joulecast.weightless import is_weightless

PUBLISHED_PARAMS = {
    # torchvision's ResNet50_Weights metadata
    "imagenet/resnet50": 25_557_032,
    # Hugging Face bert-base-uncased with each head (the Trainer's and the model cards' counts)
    "squad/bert_base_uncased": 108_893_186,
    "sentiment140/bert_base_uncased": 109_483_778,
}
FAMILIES = {
    "cifar100/shufflenetv2": "cnn",
    "imagenet/resnet50": "cnn",
    "librispeech/deepspeech2": "crnn",
    "squad/bert_base_uncased": "transformer",
    "sentiment140/bert_base_uncased": "transformer",
    "movielens-1m/ncf": "mlp",
}


@functools.cache
def _graph(name: str) -> tuple[bytes, GraphProfile]:
    dataset, network = name.split("/")
    graph = workload_graph(find_workload(dataset, network))
    return graph, profile_graph(graph)


def _conv_bn(c_in: int, c_out: int, kernel: int, groups: int = 1) -> int:
    """A biased convolution and its batch norm's scale and shift."""
    return c_out * (c_in // groups) * kernel * kernel + c_out + 2 * c_out


def _shufflenet_params() -> int:
    """ShuffleNet V2 1.0x, CIFAR form, counted from its description (stem 24; stages of 4, 8, 4
    units at 116, 232, 464 channels; 1x1 to 1,024; 100 classes; biased convolutions)."""
    total = _conv_bn(3, 24, 3)
    c_in = 24
    for c_out, units in ((116, 4), (232, 8), (464, 4)):
        half = c_out // 2
        # the downsampling unit: both branches read the whole input
        total += _conv_bn(c_in, c_in, 1) + _conv_bn(c_in, c_in, 3, c_in) + _conv_bn(c_in, half, 1)
        total += _conv_bn(c_in, c_in, 3, c_in) + _conv_bn(c_in, half, 1)
        # the others transform half of the channels
        total += (units - 1) * (
            _conv_bn(half, half, 1) + _conv_bn(half, half, 3, half) + _conv_bn(half, half, 1)
        )
        c_in = c_out
    return total + _conv_bn(464, 1024, 1) + 1024 * 100 + 100


def _deepspeech2_params() -> int:
    """deepspeech.pytorch's bidirectional DeepSpeech2 counted from its configuration."""
    conv = (32 * 41 * 11 + 32 + 64) + (32 * 32 * 21 * 11 + 32 + 64)

    def lstm(features: int, hidden: int = 1024) -> int:  # both directions, two biases each
        return 2 * (4 * hidden * (features + hidden) + 8 * hidden)

    rnns = lstm(32 * 41) + 4 * (2 * 1024 + lstm(1024))
    return conv + rnns + 2 * 1024 + 1024 * 29


def _neumf_params() -> int:
    users, items, factors = 6040, 3706, 32
    embeddings = (users + items) * (factors + 4 * factors)
    tower = (256 * 128 + 128) + (128 * 64 + 64) + (64 * 32 + 32)
    return embeddings + tower + (factors + 32) + 1


def test_the_table_names_six_workloads_with_their_epochs() -> None:
    assert [w.name for w in WORKLOADS] == list(FAMILIES)
    samples = {w.name: w.samples_per_epoch for w in WORKLOADS}
    assert samples == {
        "cifar100/shufflenetv2": 50_000,
        "imagenet/resnet50": 1_281_167,
        "librispeech/deepspeech2": 281_241,
        "squad/bert_base_uncased": 88_524,
        "sentiment140/bert_base_uncased": 1_600_000,
        "movielens-1m/ncf": 994_169 * 5,
    }
    from collector.zeus_workloads.speech import frames_for

    assert zeus_table.DEEPSPEECH_FRAMES == frames_for(zeus_table.LIBRISPEECH_MEAN_S) == 1231
    mean_s = zeus_table.LIBRISPEECH_HOURS * 3600 / zeus_table.LIBRISPEECH_UTTERANCES
    assert round(mean_s, 2) == zeus_table.LIBRISPEECH_MEAN_S
    # what could not be read off a source says so
    flagged = {w.name for w in WORKLOADS if w.assumptions}
    assert flagged == {
        "librispeech/deepspeech2",
        "squad/bert_base_uncased",
        "sentiment140/bert_base_uncased",
        "movielens-1m/ncf",
    }


def test_an_unknown_pair_is_refused() -> None:
    with pytest.raises(InvalidArgument, match="unknown Zeus workload mnist/lenet"):
        find_workload("mnist", "lenet")


@pytest.mark.parametrize("name", sorted(PUBLISHED_PARAMS))
def test_parameters_equal_the_published_count(name: str) -> None:
    assert _graph(name)[1].params == PUBLISHED_PARAMS[name]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("cifar100/shufflenetv2", _shufflenet_params),
        ("librispeech/deepspeech2", _deepspeech2_params),
        ("movielens-1m/ncf", _neumf_params),
    ],
)
def test_parameters_of_the_unpublished_counts_follow_the_architecture(name, expected) -> None:
    assert _graph(name)[1].params == expected()
    if name == "cifar100/shufflenetv2":
        # pytorch-cifar100's README rounds it to "1.3M"
        assert expected() == 1_360_896


@pytest.mark.parametrize("workload", WORKLOADS, ids=lambda w: w.name)
def test_each_graph_profiles_as_its_family_on_its_input(workload: Workload) -> None:
    graph, profile = _graph(workload.name)
    assert profile.family == FAMILIES[workload.name]
    assert profile.flops_forward > 0 and profile.flops_train == 3 * profile.flops_forward
    assert profile.input_shape == workload.input_shape
    assert profile.warnings == ()
    model = onnx.load_model_from_string(graph)
    assert is_weightless(model) and len(graph) < 300_000
    elem = model.graph.input[0].type.tensor_type.elem_type
    assert elem == (onnx.TensorProto.INT64 if workload.integer_input else onnx.TensorProto.FLOAT)


def test_the_costs_match_the_networks_arithmetic() -> None:
    # ResNet-50 v1.5: 4.09 G multiply-adds at 224x224, plus its batch norms and ReLUs
    assert 8.1e9 < _graph("imagenet/resnet50")[1].flops_forward < 8.3e9
    # BERT-base at 384 tokens: 2 x 85 M encoder weights per token, plus attention
    qa = _graph("squad/bert_base_uncased")[1]
    linear = 2 * 12 * (4 * 768 * 768 + 2 * 768 * 3072) * 384
    attention = 12 * 2 * 2 * 384 * 384 * 768
    assert 1 < qa.flops_forward / (linear + attention) < 1.02
    # DeepSpeech2: five LSTM layers over the 616 steps the convolutions leave of 1,231 frames
    speech = _graph("librispeech/deepspeech2")[1]
    assert speech.recurrent_steps == 5 * 616
    assert speech.flops_by_kind["recurrent"] > 0.85 * speech.flops_forward


def test_graphs_are_stored_once_in_a_store(tmp_path: Path) -> None:
    names = ["cifar100/shufflenetv2", "movielens-1m/ncf"]
    graphs = [_graph(n)[0] for n in names]
    with MeasurementStore(tmp_path / "z.db") as store:
        shas = store.put_graphs(graphs + graphs)
        assert len(set(shas)) == 2
        assert [store.get_graph(s) for s in shas[:2]] == graphs
    # the export is deterministic: the same workload always has the same graph (and hash)
    assert workload_graph(find_workload("movielens-1m", "ncf")) == graphs[1]
