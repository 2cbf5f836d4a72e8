"""Two ways to train the same method on the same batches, measured the same way.

- ``HarnessPipeline``: the harness's own path, :class:`bench.training.loop.Trainer` over a
  :class:`bench.training.batching.BatchSource` (uint8 training set on the device, batches drawn by
  index, prepared on the device) with the run's :class:`bench.training.acceleration.Acceleration`
  (bf16 backbone, fused optimizer, channels_last, on CUDA the step replayed from a CUDA
  graph, optional compile).
- ``ReferencePipeline``: a standard PyTorch training script: a ``DataLoader`` over a
  ``Dataset`` that returns one HWC uint8 sample at a time through torchvision's
  ``ToTensor`` + ``Normalize`` (``num_workers=2``, ``pin_memory`` on CUDA, persistent
  workers), the same model and loss in float32 with the default memory format and the
  default optimizer implementation, the loss read with ``.item()`` every step.

Both draw the same index batches (the method's sampler, same seed), so they do the same
arithmetic. Throughput is timed over ``steps`` steps after ``warmup`` steps, with the
device synchronised at both ends; neither includes model building or worker start-up.
Used by ``train_throughput.py`` and the pytest-benchmark files in this folder.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from bench.api.interfaces import BuildContext, StepContext
from bench.api.methods import TrainingSpec
from bench.api.pluginhost import PluginHost
from bench.config.protocol import ProtocolConfig
from bench.config.settings import method_config
from bench.data.faces import TRAIN, FaceData
from bench.data.preprocess import Normaliser
from bench.training.acceleration import AccelerationSpec, resolve_acceleration
from bench.training.assembly import build_optimizer, build_parts, build_scheduler
from bench.training.batching import BatchSource
from bench.training.loop import Trainer
from bench.training.step import make_train_step

YTF_IDENTITIES, YTF_TRAIN_PER_ID = 1595, 40  # YouTube Faces as the DDH papers use it: 63,800 train


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def youtube_faces_size(host: PluginHost, identities: int = YTF_IDENTITIES, size: int = 32,
                       seed: int = 0) -> FaceData:
    """``synthfaces`` with YouTube Faces' training-set size (40 train images per identity),
    or random uint8 faces when no ``synthfaces`` plugin is registered."""
    if "synthfaces" in host.datasets.names():
        return host.datasets.build("synthfaces", None, identities=identities,
                                   images_per_identity=YTF_TRAIN_PER_ID + 7, size=size, seed=seed)
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(identities), YTF_TRAIN_PER_ID + 5)
    split = np.tile(np.r_[np.zeros(YTF_TRAIN_PER_ID), np.full(5, 2)], identities).astype(np.int8)
    images = rng.integers(0, 256, (len(labels), 3, size, size), dtype=np.uint8)
    return FaceData("random-faces", images, labels, split, [f"id{k}" for k in range(identities)])


@dataclass
class Workload:
    """One method's config and training data for a throughput measurement."""

    host: PluginHost
    method: str
    config: object
    images: np.ndarray  # training split, uint8 (N, C, H, W)
    labels: np.ndarray
    normaliser: Normaliser
    ctx: BuildContext
    device: torch.device
    seed: int = 0

    @classmethod
    def build(cls, host: PluginHost, method: str, data: FaceData, *, batch_size: int, bits: int = 48,
              device: str = "cpu", seed: int = 0) -> Workload:
        protocol = ProtocolConfig(dataset=data.name, batch_size=batch_size, epochs=1)
        config = method_config(method, host.methods.get(method), protocol)
        images, labels = data.part(TRAIN)
        ctx = BuildContext(bits, data.num_classes, data.image_shape, seed, train_size=len(labels))
        return cls(host, method, config, images, labels,
                   host.normalisers.build(protocol.normalisation, data.images, data.split), ctx, torch.device(device), seed)

    @property
    def training(self) -> TrainingSpec:
        return self.config.training

    def parts(self):
        torch.manual_seed(self.seed)
        model, loss = build_parts(self.host, self.config, self.ctx)
        return model.to(self.device), loss.to(self.device)

    def source(self, memory_cap_bytes: int | None = None, device: str | None = None) -> BatchSource:
        t = self.training
        return BatchSource(self.images, self.labels, batch_size=t.batch_size, sampler=t.sampler,
                           ids_per_batch=t.ids_per_batch, seed=self.seed, device=device or self.device,
                           memory_cap_bytes=memory_cap_bytes)

    def parameters(self) -> int:
        model, loss = self.parts()
        return sum(p.numel() for p in model.parameters()) + sum(p.numel() for p in loss.parameters())


class TimedSource:
    """Yields ``warmup + steps`` batches of a source (across epochs) and times the last
    ``steps`` of them, synchronising the device at both ends."""

    def __init__(self, source: BatchSource, warmup: int, steps: int) -> None:
        self.source, self.warmup, self.steps = source, warmup, steps
        self.generator = source.generator
        self.seconds = float("nan")

    def __len__(self) -> int:
        """Batches per "epoch": the trainer's step budget is ``len(source) * epochs`` (1 epoch)."""
        return self.warmup + self.steps

    def _endless(self) -> Iterator:
        while True:
            yield from self.source

    def __iter__(self) -> Iterator:
        start = time.perf_counter()
        for i, batch in enumerate(itertools.islice(self._endless(), self.warmup + self.steps)):
            if i == self.warmup:
                sync(self.source.device)
                start = time.perf_counter()
            yield batch
        sync(self.source.device)  # the last step's work was queued before the loop asked again
        self.seconds = time.perf_counter() - start


class HarnessPipeline:
    """The harness's training path for one workload."""

    def __init__(self, work: Workload, spec: AccelerationSpec | None = None) -> None:
        self.work = work
        self.accel = resolve_acceleration(spec or AccelerationSpec(), work.device)
        self.accel.activate()
        model, self.loss = work.parts()
        self.model = self.accel.prepare_model(model)
        self.optimizer = build_optimizer(work.config.optimizer, self.model, self.loss,
                                         **self.accel.optimizer_options())
        self.source = work.source(self.accel.data_cap_bytes)
        self.scheduler = build_scheduler(work.config.schedule, self.optimizer, 10**9)
        self.spec = work.training.model_copy(update={"epochs": 1, "selection": "last"})
        # one step object for every call, so a CUDA graph is captured once, not per repeat
        self.step = make_train_step(self.model, self.loss, self.optimizer, work.normaliser, self.accel,
                                    total_steps=10**9)

    def _trainer(self, source) -> Trainer:
        return Trainer(self.step, self.scheduler, source, self.spec, self.accel.sync_every)

    def seconds(self, steps: int, warmup: int = 0) -> float:
        """Wall time of ``steps`` training steps (after ``warmup`` untimed ones)."""
        timed = TimedSource(self.source, warmup, steps)
        self._trainer(timed).fit()
        return timed.seconds

    def epoch_seconds(self) -> float:
        """Wall time of one full epoch through :class:`bench.training.loop.Trainer` (all of it:
        batches, steps, the epoch's loss read-back and the final weight snapshot)."""
        sync(self.work.device)
        start = time.perf_counter()
        self._trainer(self.source).fit()
        sync(self.work.device)
        return time.perf_counter() - start


class OneSampleFaces(Dataset):
    """One HWC uint8 face at a time through torchvision transforms (a typical Dataset)."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform) -> None:
        self.images = np.ascontiguousarray(images.transpose(0, 2, 3, 1))
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(self.images[i]), int(self.labels[i])


class EndlessBatches:
    """The harness's index batches for a DataLoader's ``batch_sampler``, epoch after epoch."""

    def __init__(self, source: BatchSource) -> None:
        self.source = source

    def __iter__(self) -> Iterator[list[int]]:
        while True:
            for idx in self.source.index_batches():
                yield idx.tolist()


class ReferencePipeline:
    """A standard PyTorch pipeline for the same workload (see the module docstring)."""

    def __init__(self, work: Workload, num_workers: int = 2) -> None:
        self.work = work
        self.model, self.loss = work.parts()
        self.optimizer = build_optimizer(work.config.optimizer, self.model, self.loss)
        self.scheduler = build_scheduler(work.config.schedule, self.optimizer, 10**9)
        mean, std = (t.tolist() for t in work.normaliser.stats[TRAIN])
        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
        cuda = work.device.type == "cuda"
        self.loader = DataLoader(
            OneSampleFaces(work.images, work.labels, transform), batch_sampler=EndlessBatches(work.source(device="cpu")),
            num_workers=num_workers, pin_memory=cuda, persistent_workers=num_workers > 0,
        )
        self.batches = iter(self.loader)

    def step(self) -> float:
        images, labels = next(self.batches)
        images = images.to(self.work.device, non_blocking=True)
        labels = labels.to(self.work.device, non_blocking=True)
        context = StepContext.of(labels)  # this pipeline does not track sample indices
        outputs = self.model(images)
        total, _ = self.loss(outputs, context)
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        self.optimizer.step()
        self.scheduler.step()
        self.loss.after_step({k: v.detach() for k, v in outputs.items()}, context)
        return total.item()

    def seconds(self, steps: int, warmup: int = 0) -> float:
        """Wall time of ``steps`` training steps (after ``warmup`` untimed ones; a warmup of at
        least the loader's prefetch depth makes the timed steps wait for fresh batches)."""
        self.model.train()
        self.loss.train()
        for _ in range(warmup):
            self.step()
        sync(self.work.device)
        start = time.perf_counter()
        for _ in range(steps):
            self.step()
        sync(self.work.device)
        return time.perf_counter() - start

    def close(self) -> None:
        del self.batches  # stops the persistent workers
