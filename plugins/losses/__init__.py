"""Loss parts: named, weighted terms that read the model's outputs."""

from bench import hookimpl
from plugins.losses.classification import CodeCrossEntropy
from plugins.losses.quantization import QuantizationLoss


@hookimpl
def register_losses(register):
    register("ce_code", CodeCrossEntropy)
    register("quantization", QuantizationLoss)
