"""The one 32x32 face backbone that the general hashing methods default to.

DPSH, HashNet, GreedyHash, CSQ and OrthoHash were published on ImageNet-pretrained
AlexNet/VGG at 224x224, which neither fits 32x32 faces nor downloads here. Under every
standard they share DCBH's multi-scale VGG trunk (``vgg16-trunc``: global-average-pooled
block 3 and block 4, 768 features), so that a leaderboard row differs from DCBH's only in
what the method contributes (head, loss, optimizer, schedule); ``--backbone`` swaps it.
"""

from __future__ import annotations

from bench.api.methods import PartSpec

FACE_BACKBONE = "vgg16-trunc"


def face_backbone() -> PartSpec:
    """The shared default backbone spec.

    >>> face_backbone().name
    'vgg16-trunc'
    """
    return PartSpec(name=FACE_BACKBONE)
