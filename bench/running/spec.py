"""What defines one run (:class:`RunSpec`, serialisable, so executors can ship it to other
processes) and what it produced (:class:`RunResult`)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from bench.api.methods import StrictModel
from bench.config.hashing import stable_hash
from bench.config.protocol import ProtocolConfig, hashed_dump
from bench.tracking.status import RunStatus
from bench.training.acceleration import AccelerationSpec

PART_OVERRIDES = ("backbone", "backbone_mode", "head", "loss")


class RunSpec(StrictModel):
    """Everything that defines one run.

    ``overrides`` records what the command line changed for this run (``backbone`` and, on a
    pretrained backbone, ``backbone_mode``, ``head``, ``loss`` and the ``set`` items that apply to its method), as given; they name the run.
    """

    method: str
    bits: int
    seed: int
    protocol: ProtocolConfig
    method_config: dict[str, Any]
    overrides: dict[str, Any] = {}
    data_root: str | None = None
    device: str = "auto"
    acceleration: AccelerationSpec = AccelerationSpec()

    @property
    def label(self) -> str:
        """The method and, in brackets, the settings this run overrides; just the method for
        a run with its defaults.

        >>> spec = RunSpec(method="pca-itq", bits=12, seed=0, protocol=ProtocolConfig(), method_config={},
        ...                overrides={"head": "block", "set": ["pca-itq.iterations=5"]})
        >>> spec.label, spec.name, spec.model_copy(update={"overrides": {}}).name
        ('pca-itq[head=block,iterations=5]', 'pca-itq[head=block,iterations=5]-12b-s0', 'pca-itq-12b-s0')
        """
        items = [f"{key}={self.overrides[key]}" for key in PART_OVERRIDES if self.overrides.get(key)]
        items += [item.removeprefix(f"{self.method}.") for item in self.overrides.get("set", [])]
        return f"{self.method}[{','.join(items)}]" if items else self.method

    @property
    def name(self) -> str:
        """The run's name: ``<label>-<bits>b-s<seed>``, e.g. ``dcbh-12b-s0``, then the split:
        ``-open<k>`` under the open-set protocol with split seed k, ``-split<k>`` for a
        closed-set split seed k other than 0.

        >>> protocol = ProtocolConfig(split="open-set", split_seed=2)
        >>> RunSpec(method="lsh", bits=12, seed=0, protocol=protocol, method_config={}).name
        'lsh-12b-s0-open2'
        """
        split = self.protocol.split_seed
        suffix = f"-open{split}" if self.protocol.split == "open-set" else f"-split{split}" if split else ""
        return f"{self.label}-{self.bits}b-s{self.seed}{suffix}"

    @property
    def folder_name(self) -> str:
        """The run's folder under the output directory: its name (characters a path may not
        hold replaced) and the start of its config hash."""
        return f"{re.sub(r'[^A-Za-z0-9._+=,:@%-]', '_', self.name)[:150]}-{self.config_hash()[:8]}"

    def config_hash(self) -> str:
        """Identifies the run's full configuration (not where its data lives or its device).

        A precision asked for explicitly (``--precision fp32|bf16``) is part of it, so such a
        run never stands in for a default one; ``auto`` is not (it resolves per device)."""
        payload = self.model_dump(mode="json", include={"method", "bits", "seed", "method_config"})
        payload["protocol"] = hashed_dump(self.protocol)
        if self.acceleration.precision != "auto":
            payload["precision"] = self.acceleration.precision
        return stable_hash(payload)[:16]


@dataclass
class RunResult:
    """What a run produced, for the results table; ``reason`` says why a run did not finish."""

    spec: RunSpec
    status: RunStatus
    metrics: dict[str, float] = field(default_factory=dict)
    run_id: str | None = None
    seconds: float = 0.0
    reason: str = ""
    collapsed: str = ""  # how the gallery codes collapsed (bench.evaluation.codes.collapse_note), if they did
