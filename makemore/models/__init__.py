"""The model registry: --type picks a class by name. A new model is one file plus one line here."""

from __future__ import annotations

from .base import Model, ModelConfigError, SequenceModel, WindowModel
from .bigram import Bigram
from .bnmlp import BNMLP
from .bow import BoW
from .convnet import ConvNet
from .gru import GRU
from .lstm import LSTM
from .mlp import MLP
from .nbigram import NeuralBigram
from .ngram import Ngram
from .rnn import RNN
from .transformer import Transformer
from .wavenet import WaveNet

DEFAULT_MODEL = "mlp"  # the type of a run whose config names none

MODELS: dict[str, type[Model]] = {
    "bigram": Bigram,
    "nbigram": NeuralBigram,
    "mlp": MLP,
    "ngram": Ngram,
    "bnmlp": BNMLP,
    "wavenet": WaveNet,
    "transformer": Transformer,
    "rnn": RNN,
    "gru": GRU,
    "lstm": LSTM,
    "bow": BoW,
    "convnet": ConvNet,
}


def create_model(model_type: str, config, vocab_size: int, max_length: int | None = None,
                 labels: list[str] | None = None) -> Model:
    """Instantiate a registered model for a vocabulary, longest item and labels (if any); an unknown name
    lists the valid ones."""
    if model_type not in MODELS:
        raise ModelConfigError(f"unknown model type {model_type!r} (valid types: {', '.join(sorted(MODELS))})")
    model = MODELS[model_type](config, vocab_size, max_length)
    if labels:
        model.attach_labels(labels)
    return model


__all__ = ["DEFAULT_MODEL", "MODELS", "Model", "ModelConfigError", "SequenceModel", "WindowModel", "create_model"]
