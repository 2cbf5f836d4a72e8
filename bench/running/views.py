"""The data a pretrained backbone reads: the protocol's dataset, split and identities, loaded
with the settings the network expects (:class:`~bench.api.interfaces.BackboneInputs`: e.g.
face chips aligned its way, at its input size, with its normaliser).

A run that reads a pretrained backbone (a deep run on ``protocol.pretrained``, or a fitted
method on a backbone's embeddings) keeps the protocol's data for everything else (its
checksums, fingerprints, labels and split), so it is evaluated on the same queries and
gallery as every other run of the protocol; only the images its backbone sees come from
the view, image for image (the view must hold the same labels and split, else one line).
"""

from __future__ import annotations

import typing
from typing import Any

import numpy as np

from bench.api.errors import BenchError
from bench.api.interfaces import BackboneInputs, PretrainedBackbone
from bench.api.methods import DeepMethod, FittedMethod, Method
from bench.api.pluginhost import PluginHost
from bench.config.protocol import ProtocolConfig
from bench.data.faces import FaceData, ValidationOnly, without_queries
from bench.data.loading import dataset_for


def pretrained_class(factory: Any) -> type[PretrainedBackbone] | None:
    """The :class:`PretrainedBackbone` a registered backbone factory builds: the factory
    itself when it is such a class, else its return annotation when that is one."""
    target = getattr(factory, "func", factory)
    if not isinstance(target, type):
        try:
            target = typing.get_type_hints(target).get("return")
        except (NameError, TypeError):
            return None
    return target if isinstance(target, type) and issubclass(target, PretrainedBackbone) else None


def is_pretrained(host: PluginHost, backbone: str) -> bool:
    """Whether the registered backbone ``backbone`` is pretrained (an unknown name fails
    here, listing the known ones)."""
    return pretrained_class(host.backbones.get(backbone)) is not None


def run_backbone(method: Method, config: Any, protocol: ProtocolConfig) -> str | None:
    """The pretrained backbone a run reads through a view: the protocol's for a deep run on
    one, the embedding backbone of a fitted method on embeddings, else ``None``."""
    if isinstance(method, DeepMethod) and protocol.pretrained is not None:
        return protocol.pretrained.backbone
    if isinstance(method, FittedMethod):
        spec = method.embedding_backbone(config)
        return spec.name if spec is not None else None
    return None


def expected_inputs(host: PluginHost, backbone: str) -> BackboneInputs:
    """What ``backbone`` reads (nothing particular for one that is not pretrained)."""
    cls = pretrained_class(host.backbones.get(backbone))
    return cls.expects if cls is not None else BackboneInputs()


def trained_on(host: PluginHost, backbone: str, dataset: str) -> bool:
    """Whether the pretrained ``backbone`` was trained partly on ``dataset``
    (:attr:`PretrainedBackbone.trained_on`)."""
    cls = pretrained_class(host.backbones.get(backbone))
    return cls is not None and dataset in cls.trained_on


def view_protocol(protocol: ProtocolConfig, expects: BackboneInputs) -> ProtocolConfig:
    """``protocol`` with the dataset options, input size and normaliser the backbone expects.

    >>> p = view_protocol(ProtocolConfig(), BackboneInputs((("align", "dlib"),), 150, "dlib-rgb"))
    >>> p.dataset_options, p.input_size, p.normalisation
    ({'align': 'dlib'}, 150, 'dlib-rgb')
    """
    update: dict[str, Any] = {"dataset_options": {**protocol.dataset_options, **dict(expects.dataset_options)}}
    if expects.input_size is not None:
        update["input_size"] = expects.input_size
    if expects.normalisation is not None:
        update["normalisation"] = expects.normalisation
    return protocol.model_copy(update=update)


def backbone_view(host: PluginHost, protocol: ProtocolConfig, data_root: str | None, backbone: str,
                  data: FaceData, normalisation: str) -> tuple[FaceData, str]:
    """The images ``backbone`` reads for the run's ``data`` and the normaliser's name:
    ``data`` and ``normalisation`` themselves when it expects nothing particular."""
    expects = expected_inputs(host, backbone)
    if expects == BackboneInputs():
        return data, normalisation
    view = dataset_for(host, view_protocol(protocol, expects), data_root)
    if isinstance(data, ValidationOnly):  # a tuning trial: the view leaves the queries out as well
        view = without_queries(view)
    if not (np.array_equal(view.labels, data.labels) and np.array_equal(view.split, data.split)):
        raise BenchError(f"backbone {backbone}: dataset '{protocol.dataset}' loaded as the network expects "
                         f"({dict(expects.dataset_options)}, {expects.input_size} px) does not line up image for "
                         "image with the protocol's (labels or split differ); the dataset plugin must keep its "
                         "order and split under these options")
    return view, expects.normalisation or normalisation
