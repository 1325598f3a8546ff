"""The six training workloads of Zeus (You, Chung & Chowdhury, NSDI '23): what one epoch is.

Each :class:`Workload` names the trace's (``dataset``, ``network``) pair, the samples of one
training epoch, the shape of one sample and the network, rebuilt here in PyTorch and exported
weightless (:func:`workload_graph`) with the exporter the collector uses.

The Zeus repository (ml-energy/zeus) holds trainers for CIFAR-100 (``examples/cifar100``),
ImageNet (``examples/imagenet``) and Sentiment140 (``examples/capriccio``), but none for
LibriSpeech, SQuAD or MovieLens-1M. For those the implementation is inferred from what the trace
and the Zeus simulator's job table (``examples/research_reproducibility/zeus_nsdi23/
run_alibaba.py``) say: optimizer, epochs, target metric.

Where every number comes from (A = an assumption, flagged in each row's notes):

| workload | number | value | source |
|---|---|---|---|
| cifar100 / shufflenetv2 | samples per epoch | 50,000 | CIFAR-100 training split, ``datasets.CIFAR100(train=True)`` in Zeus ``examples/cifar100/train.py`` |
| | input | 3x32x32, 100 classes | ``RandomCrop(32, padding=4)`` in that trainer |
| | network | ShuffleNet V2 1.0x, CIFAR stem | Zeus ``examples/cifar100/models/shufflenetv2.py`` (from weiaicunzai/pytorch-cifar100, whose README gives 1.3M parameters): 1,360,896 |
| imagenet / resnet50 | samples per epoch | 1,281,167 | ILSVRC-2012 training set; also the size Zeus ``examples/imagenet/train.py`` gives its synthetic stand-in |
| | input | 3x224x224, 1,000 classes | ``RandomResizedCrop(224)`` in that trainer, ``torchvision.models.resnet50`` |
| | network | ResNet-50 v1.5 | torchvision's weights metadata: 25,557,032 parameters |
| librispeech / deepspeech2 | implementation | deepspeech.pytorch V3 (SeanNaren) | A: the Zeus job (AdamW, 16 epochs, WER 40) matches its ``configs/librispeech.yaml`` (16 epochs) and its Adam config (``torch.optim.AdamW``) |
| | samples per epoch | 281,241 utterances | train-clean-100 + train-clean-360 + train-other-500 (28,539 + 104,014 + 148,688; Panayotov et al., 2015), the default of deepspeech.pytorch's ``data/librispeech.py``; A: its manifest step drops utterances outside 1-15 s by default, which would leave fewer; whether Zeus kept that default is unknown |
| | input | 1x161x1,231 | 161 bins (20 ms windows at 16 kHz); A: 1,231 frames = 12.30 s, the mean utterance (960.9 h / 281,241) at a 10 ms hop; the LSTMs' cost is linear in length and the loader batches utterances of similar length, so the mean length gives the mean cost |
| | precision | FP16 mixed (autocast) | A: deepspeech.pytorch V3's ``configs/librispeech.yaml`` trains with ``trainer.precision: 16``; the trace's best epochs would otherwise run above the V100's and the RTX 6000's FP32 peaks (18.8 and 17.0 TFLOP/s) |
| | network | 2 conv + 5 bidirectional LSTM x 1,024, 29 characters | deepspeech.pytorch ``BiDirectionalConfig`` and ``model.py``: 86,618,400 parameters |
| squad / bert_base_uncased | implementation | Hugging Face ``run_qa.py`` | A: the Zeus job is AdamW, 6 epochs, F1 84; no trainer in the Zeus repository |
| | sequence length | 384 (doc stride 128) | A: ``run_qa.py``'s defaults (and its README recipe for bert-base-uncased) |
| | samples per epoch | 88,524 features | SQuAD v1.1's 87,599 training questions tokenised at 384/128 by the bert-base-uncased tokenizer (the Trainer's "Num examples") |
| | network | BertForQuestionAnswering | 108,893,186 parameters |
| sentiment140 / bert_base_uncased | sequence length | 128 | ``--max_length`` default of Zeus ``examples/capriccio/train.py``; A: that trainer pads each batch to its longest tweet (no ``--pad_to_max_length``), so real batches are shorter (53-55 tokens on average if the epoch is the full split, see below) |
| | labels | 2 | Sentiment140's training tweets have polarity 0 or 4 only |
| | samples per epoch | 1,600,000 | A: the ``sentiment140`` training split. The Capriccio slices of the Zeus repository hold 425,000 training tweets, but the trace's epochs are too long for them: on every GPU, SQuAD's fastest epoch gives the tokens per second BERT-base trains at, and 425,000 tweets of at most 128 tokens would take at most 62 % (V100), 64 % (RTX 6000), 62 % (P100) of the measured Sentiment140 epoch; the full split fits at 53-55 tokens a tweet |
| | network | BertForSequenceClassification, 2 labels | 109,483,778 parameters |
| movielens-1m / ncf | implementation | guoyang9/NCF, NeuMF-end | A: the Zeus job (Adam, target NDCG 0.41) fits that implementation (its NeuMF reaches NDCG@10 0.424 on MovieLens-1M) |
| | samples per epoch | 4,970,845 | 994,169 training interactions (1,000,209 ratings less the newest of each of 6,040 users, He et al.'s leave-one-out split) x (1 positive + 4 sampled negatives): ``len(NCFData)`` with ``num_ng=4`` |
| | network | NeuMF, 32 factors, 3 MLP layers, 6,040 users, 3,706 items | guoyang9/NCF ``main.py`` defaults and ``ml-1m.train.rating``: 1,602,657 parameters |
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from joulecast.errors import InvalidArgument

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Workload:
    """One (dataset, network) pair of the Zeus traces and one epoch of its training.

    ``input_shape`` is one sample's shape (batch axis excluded); ``integer_input`` says the
    input holds ids (int64) rather than floats. ``precision`` is the arithmetic its trainer
    ran in (:data:`joulecast.measurement.PRECISIONS`). ``assumptions`` are the numbers of the
    module table that could not be read off a source (each row's notes repeat them).
    """

    dataset: str
    network: str
    task: str
    samples_per_epoch: int
    input_shape: tuple[int, ...]
    integer_input: bool
    build: Callable[[], object]
    num_layers: str
    hidden_size: str
    data: str
    assumptions: tuple[str, ...] = ()
    precision: str = "fp32"

    @property
    def name(self) -> str:
        return f"{self.dataset}/{self.network}"


def _shufflenet() -> object:
    # a workload's model code loads only when that workload is built
    from collector.zeus_workloads.vision import ShuffleNetV2Cifar

    return ShuffleNetV2Cifar(classes=100)


def _resnet50() -> object:
    # a workload's model code loads only when that workload is built
    from collector.zeus_workloads.vision import ResNet50

    return ResNet50(classes=1000)


def _deepspeech2() -> object:
    # a workload's model code loads only when that workload is built
    from collector.zeus_workloads.speech import DeepSpeech2

    return DeepSpeech2()


def _bert_qa() -> object:
    # a workload's model code loads only when that workload is built
    from collector.zeus_workloads.bert import BertForQuestionAnswering

    return BertForQuestionAnswering()


def _bert_sentiment() -> object:
    # a workload's model code loads only when that workload is built
    from collector.zeus_workloads.bert import BertForSequenceClassification

    return BertForSequenceClassification(labels=2)


def _neumf() -> object:
    # a workload's model code loads only when that workload is built
    from collector.zeus_workloads.ncf import NeuMF

    return NeuMF()


LIBRISPEECH_UTTERANCES = 28_539 + 104_014 + 148_688
LIBRISPEECH_HOURS = 100.6 + 363.6 + 496.7
LIBRISPEECH_MEAN_S = 12.30
"""Mean training utterance in seconds: 960.9 h / 281,241 = 12.30 s."""
DEEPSPEECH_FRAMES = 1231
"""``speech.frames_for(LIBRISPEECH_MEAN_S)``: 1 + 196,800 samples // 160 (spelled out so that
reading the table imports no torch)."""
MOVIELENS_TRAIN_POSITIVES = 1_000_209 - 6_040
NCF_NEGATIVES = 4

WORKLOADS: tuple[Workload, ...] = (
    Workload(
        dataset="cifar100",
        network="shufflenetv2",
        task="image classification",
        samples_per_epoch=50_000,
        input_shape=(3, 32, 32),
        integer_input=False,
        build=_shufflenet,
        num_layers="4,8,4",
        hidden_size="116,232,464",
        data="CIFAR-100, 50,000 training images per epoch (3x32x32)",
    ),
    Workload(
        dataset="imagenet",
        network="resnet50",
        task="image classification",
        samples_per_epoch=1_281_167,
        input_shape=(3, 224, 224),
        integer_input=False,
        build=_resnet50,
        num_layers="3,4,6,3",
        hidden_size="256,512,1024,2048",
        data="ImageNet (ILSVRC-2012), 1,281,167 training images per epoch (3x224x224)",
    ),
    Workload(
        dataset="librispeech",
        network="deepspeech2",
        task="speech recognition",
        samples_per_epoch=LIBRISPEECH_UTTERANCES,
        input_shape=(1, 161, DEEPSPEECH_FRAMES),
        integer_input=False,
        build=_deepspeech2,
        num_layers="2,5",
        hidden_size="32,1024",
        data=f"LibriSpeech 960 h, {LIBRISPEECH_UTTERANCES:,} training utterances per epoch",
        assumptions=(
            "implementation: deepspeech.pytorch V3 defaults (inferred from the Zeus job: "
            "AdamW, 16 epochs)",
            f"samples: all {LIBRISPEECH_UTTERANCES:,} utterances of the 960 h training set "
            "(deepspeech.pytorch's manifest step drops those outside 1-15 s by default)",
            f"input: {DEEPSPEECH_FRAMES} frames, the mean utterance of {LIBRISPEECH_MEAN_S} s",
            "precision: FP16 mixed (deepspeech.pytorch V3's configs/librispeech.yaml sets "
            "trainer.precision 16)",
        ),
        precision="amp-fp16",
    ),
    Workload(
        dataset="squad",
        network="bert_base_uncased",
        task="question answering",
        samples_per_epoch=88_524,
        input_shape=(384,),
        integer_input=True,
        build=_bert_qa,
        num_layers="12",
        hidden_size="768",
        data="SQuAD v1.1, 88,524 training features per epoch (384 tokens, doc stride 128)",
        assumptions=(
            "implementation: Hugging Face run_qa.py defaults, max_seq_length 384, doc stride "
            "128 (no SQuAD trainer in the Zeus repository)",
        ),
    ),
    Workload(
        dataset="sentiment140",
        network="bert_base_uncased",
        task="sentiment classification",
        samples_per_epoch=1_600_000,
        input_shape=(128,),
        integer_input=True,
        build=_bert_sentiment,
        num_layers="12",
        hidden_size="768",
        data="Sentiment140, 1,600,000 training tweets per epoch (at most 128 tokens)",
        assumptions=(
            "samples: the whole 1,600,000-tweet training split (the Zeus Capriccio slices "
            "hold 425,000; the trace's epoch times are too long for them)",
            "input: 128 tokens (--max_length); the trainer pads each batch to its longest "
            "tweet, 53-55 tokens on average by the trace's epoch times",
        ),
    ),
    Workload(
        dataset="movielens-1m",
        network="ncf",
        task="recommendation",
        samples_per_epoch=MOVIELENS_TRAIN_POSITIVES * (1 + NCF_NEGATIVES),
        input_shape=(2,),
        integer_input=True,
        build=_neumf,
        num_layers="3",
        hidden_size="32",
        data=(
            f"MovieLens-1M, {MOVIELENS_TRAIN_POSITIVES:,} training interactions + "
            f"{NCF_NEGATIVES} sampled negatives each per epoch"
        ),
        assumptions=(
            "implementation: guoyang9/NCF NeuMF-end defaults (32 factors, 3 MLP layers, "
            "4 negatives per positive), inferred from the Zeus job: Adam, NDCG 0.41",
        ),
    ),
)
"""The six workloads, in the order of the Zeus traces."""


def find_workload(dataset: str, network: str) -> Workload:
    """The workload of a trace row; InvalidArgument when the pair is not one of the six."""
    for workload in WORKLOADS:
        if workload.dataset == dataset and workload.network == network:
            return workload
    known = ", ".join(w.name for w in WORKLOADS)
    raise InvalidArgument(f"unknown Zeus workload {dataset}/{network} (known: {known})")


def workload_graph(workload: Workload) -> bytes:
    """The weightless ONNX graph of ``workload``'s network at batch 1 (the batch axis is
    dynamic).

    The network is built on the ``meta`` device, so no initialiser runs (BERT-base's 110 M
    parameters would take seconds), then given zero-filled memory to be traced: the graph and
    its profile do not depend on the weights' values.
    """
    # a workload's model code loads only when that workload is built
    import torch

    from joulecast.weightless import export_weightless

    with torch.device("meta"):
        model = workload.build()
    model = model.to_empty(device="cpu")  # type: ignore[attr-defined]
    with torch.no_grad():
        for tensor in (*model.parameters(), *model.buffers()):
            tensor.zero_()
    model.eval()
    dtype = torch.long if workload.integer_input else torch.float32
    example = torch.zeros(1, *workload.input_shape, dtype=dtype)
    logger.debug("exporting %s", workload.name)
    return export_weightless(model, example)
