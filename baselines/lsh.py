"""LSH: the sign of a seeded Gaussian random projection of the normalised pixels."""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from bench.api.methods import Encoder, FittedMethod, StrictModel


class LSHConfig(StrictModel):
    """LSH has no hyperparameters beyond the seed; ``center`` subtracts the training mean."""

    center: bool = True


class LSH(FittedMethod):
    """Random-projection LSH (Charikar 2002): no training, the floor for learned hashes."""

    name: ClassVar[str] = "lsh"
    Config = LSHConfig

    def fit(self, x: np.ndarray, y: np.ndarray, bits: int, seed: int, config: LSHConfig) -> Encoder:
        rng = np.random.default_rng(seed)
        projection = rng.standard_normal((x.shape[1], bits)).astype(np.float32)
        mean = x.mean(axis=0) if config.center else np.zeros(x.shape[1], np.float32)

        def encode(v: np.ndarray) -> np.ndarray:
            return (v - mean) @ projection

        return encode
