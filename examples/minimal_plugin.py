"""A complete minimal facehash-bench plugin: one backbone and one method.

Install it by declaring an entry point in your package's pyproject.toml::

    [project.entry-points.facehash_bench]
    minimal = "minimal_plugin"

then ``bench plugins`` lists ``pixel-mlp`` and ``tiny-hash``, and
``bench run --method tiny-hash --bits 16`` trains it. The test suite loads this file.
"""

from torch import nn

from bench import hookimpl
from bench.api.interfaces import Backbone, BuildContext
from bench.api.methods import DeepMethod, DeepMethodConfig, LossTerm, PartSpec


class PixelMLP(Backbone):
    """A two-layer perceptron on raw pixels (a toy backbone)."""

    def __init__(self, ctx: BuildContext, hidden: int = 128) -> None:
        super().__init__()
        c, h, w = ctx.input_shape
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(c * h * w, hidden), nn.ReLU())
        self.feature_dims = {"hidden": hidden}

    def forward(self, images):
        return {"hidden": self.net(images)}


class TinyHashConfig(DeepMethodConfig):
    """Defaults of the method; every field can be changed with --set."""

    backbone: PartSpec = PartSpec(name="pixel-mlp", options={"hidden": 128})
    head: PartSpec = PartSpec(name="fc")
    losses: list[LossTerm] = [LossTerm(name="ce_code"), LossTerm(name="quantization", weight=0.1)]


class TinyHash(DeepMethod):
    """Pixel MLP + fully connected hash layer, trained by identity classification."""

    Config = TinyHashConfig


@hookimpl
def register_backbones(register):
    register("pixel-mlp", PixelMLP)


@hookimpl
def register_methods(register):
    register("tiny-hash", TinyHash())
