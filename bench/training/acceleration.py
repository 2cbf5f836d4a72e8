"""How a run uses its device: mixed precision, memory format, fused optimizers, compilation,
CUDA graphs of the training step (:mod:`bench.training.step`), cuDNN autotuning, CPU
threads, and where the training set lives. Resolved once per run from an
:class:`AccelerationSpec` and the device; every choice is returned by
:meth:`Acceleration.tags` so it lands in the run's MLflow tags.

Numerics under ``bf16``: only the backbone runs under bfloat16 autocast; its features are
cast back to float32, so the hashing head (tanh, the relaxed code ``u`` and its sign) and
every loss part stay float32. ``auto`` picks bf16 where the hardware computes it natively:
CUDA devices that support it, and CPUs with AVX512-BF16 or AMX (oneDNN's bf16 convolutions
there run DCBH's step about 2x faster than float32; measured in ``benchmarks/``); float32
elsewhere, where bf16 would be emulated and slower. ``--precision fp32`` keeps the released
code's float32 arithmetic anywhere. A bf16 run says so in its tags (``accel.precision`` and
the deviation tag ``deviation.precision``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
from pydantic import Field

from bench.api.deviations import deviation_tag
from bench.api.errors import BenchError
from bench.api.methods import StrictModel
from bench.config.device import cpu_threads
from bench.training.assembly import HashingModel

CUDA_SYNC_EVERY = 25  # steps between host reads of the loss on CUDA (each read waits for the GPU)
# What ``--cuda-graph auto`` does on CUDA. False until the graph tests of benchmarks/gpu_check.sh
# have passed on a GPU (recorded in docs/speed.md with the date and device): no CUDA path has
# run since the step was rewritten, so auto trains eagerly and ``--cuda-graph on`` opts in.
CUDA_GRAPH_AUTO = False
CUDA_GRAPH_AUTO_NOTE = ("auto = eager on CUDA until the graph tests of benchmarks/gpu_check.sh pass on a GPU "
                        "(docs/speed.md); --cuda-graph on opts in")


class AccelerationSpec(StrictModel):
    """Execution settings of a run. They change speed, and under ``bf16`` the rounding, but
    not what is trained, so they are not part of its configuration hash, except an explicit
    ``precision`` (``bf16`` or ``fp32``: :meth:`bench.running.spec.RunSpec.config_hash`)."""

    precision: Literal["auto", "bf16", "fp32"] = "auto"
    compile: bool = False
    cuda_graph: Literal["auto", "on", "off"] = "auto"
    device_data_mb: float | None = Field(None, ge=0)


@dataclass(frozen=True)
class Acceleration:
    """The resolved choices for one run on one device."""

    device: torch.device
    precision: str  # "bf16" or "fp32"
    channels_last: bool
    compile: bool
    cuda_graph: bool  # capture the training step in a CUDA graph (bench.training.step)
    fused_optimizer: bool
    cudnn_benchmark: bool
    threads: int | None  # CPU intra-op threads set for the run; None: left as they are
    data_cap_bytes: int | None  # the training set stays on the device up to this size; None: no cap
    sync_every: int  # steps between host reads of the loss
    cuda_graph_note: str | None = None  # why ``--cuda-graph auto`` did not capture (tagged), or None

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        """The backbone's autocast dtype, or ``None`` for plain float32."""
        return torch.bfloat16 if self.precision == "bf16" else None

    @property
    def memory_format(self) -> torch.memory_format:
        """Memory format of the model's input batches (and of its conv weights)."""
        return torch.channels_last if self.channels_last else torch.contiguous_format

    def activate(self) -> None:
        """Apply the process-wide settings (cuDNN autotuning, CPU threads)."""
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = self.cudnn_benchmark
        if self.threads is not None and torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)

    def prepare_model(self, model: HashingModel) -> HashingModel:
        """Memory format, backbone autocast and (optionally) in-place ``torch.compile``;
        parameter names stay unchanged, so checkpoints load either way."""
        if self.channels_last:
            model.to(memory_format=torch.channels_last)
        model.autocast_dtype = self.autocast_dtype
        if self.compile:
            model.compile()
        return model

    def optimizer_options(self) -> dict[str, bool]:
        """Keyword options for :func:`bench.training.assembly.build_optimizer`."""
        return {"fused": True} if self.fused_optimizer else {}

    def tags(self) -> dict[str, str]:
        """MLflow tags (without the ``facehash.`` prefix the runner adds)."""
        tags = {
            "accel.precision": self.precision,
            "accel.precision_scope": "backbone" if self.precision == "bf16" else "none",
            "accel.channels_last": str(self.channels_last).lower(),
            "accel.compile": str(self.compile).lower(),
            "accel.cuda_graph": str(self.cuda_graph).lower(),
            **({"accel.cuda_graph_note": self.cuda_graph_note} if self.cuda_graph_note else {}),
            "accel.fused_optimizer": str(self.fused_optimizer).lower(),
            "accel.threads": str(self.threads if self.threads is not None else torch.get_num_threads()),
            "accel.sync_every": str(self.sync_every),
        }
        if self.precision == "bf16":
            tags[deviation_tag("precision")] = "bf16 autocast in the backbone (reference: float32)"
        if self.device.type == "cuda":
            tags["accel.cudnn_benchmark"] = str(self.cudnn_benchmark).lower()
            tags["accel.device_data_cap_mb"] = (
                "none" if self.data_cap_bytes is None else f"{self.data_cap_bytes / 2**20:.0f}"
            )
        return tags


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX tiles)."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # torch.cpu, no public API yet
    return any(getattr(torch.cpu, probe, lambda: False)() for probe in probes)


def resolve_acceleration(spec: AccelerationSpec, device: torch.device) -> Acceleration:
    """Turn ``auto`` choices into concrete ones for ``device``.

    >>> a = resolve_acceleration(AccelerationSpec(precision="fp32"), torch.device("cpu"))
    >>> a.precision, a.channels_last, a.fused_optimizer, a.cuda_graph, a.sync_every, a.data_cap_bytes
    ('fp32', True, True, False, 1, None)
    >>> auto = resolve_acceleration(AccelerationSpec(), torch.device("cpu")).precision
    >>> auto == ("bf16" if cpu_has_native_bf16() else "fp32")
    True
    """
    cuda = device.type == "cuda"
    precision = spec.precision
    if precision == "auto":
        native = torch.cuda.is_bf16_supported() if cuda else device.type == "cpu" and cpu_has_native_bf16()
        precision = "bf16" if native else "fp32"
    elif precision == "bf16" and cuda and not torch.cuda.is_bf16_supported():
        raise BenchError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16 support; use --precision fp32")
    if spec.cuda_graph == "on" and not cuda:
        raise BenchError(f"--cuda-graph on needs a CUDA device, but the run is on {device.type}; use auto or off")
    if spec.cuda_graph == "on" and spec.compile:
        raise BenchError("--cuda-graph on with --compile: capturing compiled code is not supported; drop one of them")
    cap = None
    if cuda:
        if spec.device_data_mb is not None:
            cap = int(spec.device_data_mb * 2**20)
        else:  # a quarter of the device's memory leaves the rest to the model and activations
            cap = torch.cuda.get_device_properties(device).total_memory // 4
    return Acceleration(
        device=device,
        precision=precision,
        channels_last=True,  # oneDNN and cuDNN convolutions both gain from NHWC
        compile=spec.compile,
        # auto: graphs on CUDA once measured (CUDA_GRAPH_AUTO), unless torch.compile manages the
        # step (its own cudagraph modes)
        cuda_graph=spec.cuda_graph == "on" or (spec.cuda_graph == "auto" and cuda and not spec.compile
                                               and CUDA_GRAPH_AUTO),
        fused_optimizer=device.type in ("cuda", "cpu"),  # torch's fused Adam/AdamW/SGD kernels
        cudnn_benchmark=cuda,
        threads=None if cuda else cpu_threads(),
        data_cap_bytes=cap,
        sync_every=CUDA_SYNC_EVERY if cuda else 1,
        cuda_graph_note=CUDA_GRAPH_AUTO_NOTE if spec.cuda_graph == "auto" and cuda and not CUDA_GRAPH_AUTO else None,
    )


