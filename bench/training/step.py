"""One training step, run eagerly or replayed from a CUDA graph.

A step takes a :class:`~bench.training.batching.Batch` already augmented (augmentation
draws from the run's CPU generator, so it stays outside) on the training device and its
position in the run (epoch, steps before it); it sets the memory format, normalises, runs
forward, the loss parts (which read a :class:`~bench.api.interfaces.StepContext`: labels,
sample indices, epoch, step), backward, the optimizer step and the loss parts' after-step
hooks (DCBH's centre rule), and returns the step's loss values ``[total, part...]`` as one
float32 device tensor: no host read, so the host can queue the next step while the device
works. The epoch and step live in two device tensors refilled (``fill_``, no copy, no
wait) before every step, so a captured step reads each step's values.

On CUDA, issuing a step's few hundred small kernels from Python takes longer than running
them at batch 256 of 32x32 images. :class:`GraphedStep` therefore captures the whole step
in a CUDA graph and replays it, one launch per step, following PyTorch's whole-network
recipe ("CUDA semantics: whole-network capture"): eager warm-up steps on a side stream
(optimizer state, cuDNN autotuning), then capture from static input buffers.

- Each batch shape gets its own graph after one eager step of that shape (an epoch's last
  batch; a balanced sampler's batches of different sizes), up to :data:`MAX_GRAPHS`;
  the graphs share one memory pool. Eager steps between replays zero the graphs' gradient
  buffers in place and accumulate into them.
- The fused optimizers take a float learning rate as a kernel argument, so a change of
  learning rate (a step schedule's milestone) captures again, up to
  :data:`MAX_LR_CHANGES` times; a schedule that changes it more often trains eagerly.
- A capture that fails (a third-party part that reads back to the host, such as ``.item()``
  or boolean-mask indexing) falls back to eager steps for the rest of the run. A part that
  keeps tensors from one step to the next must update them in place (as the optimizer,
  BatchNorm and the centre loss do): a graph replays the kernels, not the Python.

A :class:`GraphedStep` is in one :class:`GraphState` at a time: warming up (eager steps on a
side stream until a batch shape can be captured; again after a learning-rate change drops
the graphs), captured (some shapes replay) or eager fallback (for the rest of the run).
:attr:`TrainStep.status` says which path ran; it lands in the run's tags. The graph
mechanics sit behind :class:`CudaGraphs` so the bookkeeping is testable without a GPU.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager
from enum import Enum

import torch

from bench.api.interfaces import StepContext
from bench.data.preprocess import Normaliser, prepare_batch
from bench.training.acceleration import Acceleration
from bench.training.assembly import CompositeLoss, HashingModel
from bench.training.batching import Batch

WARMUP_STEPS = 3  # eager steps before capture (PyTorch's recipe uses 3; DDP would need 11)
MAX_GRAPHS = 16  # batch shapes captured at most (a balanced sampler's batches vary in size)
MAX_LR_CHANGES = 8  # learning-rate changes that capture again (step schedules have a few)
Shape = tuple[tuple[int, ...], tuple[int, ...]]


class TrainStep:
    """The eager training step (see the module docstring); ``total_steps`` is the run's
    step budget, as the loss parts' :class:`~bench.api.interfaces.StepContext` reports it."""

    def __init__(self, model: HashingModel, loss: CompositeLoss, optimizer: torch.optim.Optimizer,
                 normaliser: Normaliser, accel: Acceleration, total_steps: int,
                 extra_bn_pass: bool = False) -> None:
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.extra_bn_pass = extra_bn_pass  # TrainingSpec.extra_bn_pass
        self.normaliser = normaliser
        self.memory_format = accel.memory_format
        self.total_steps = total_steps
        self.names = ["total", *loss.names]  # the order of the returned values
        # where the step is in the run, on the device (a captured step reads them at replay)
        self.epoch = torch.zeros((), dtype=torch.int64, device=accel.device)
        self.steps_before = torch.zeros((), dtype=torch.int64, device=accel.device)

    @property
    def status(self) -> str:
        return "eager"

    def run(self, batch: Batch, keep_grads: bool = False) -> torch.Tensor:
        """One eager step at the position last set. ``keep_grads`` zeroes the gradients in
        place instead of dropping them (a graph's gradient buffers must stay where the graph
        writes them)."""
        context = StepContext(batch.labels, batch.indices, self.epoch, self.steps_before, self.total_steps)
        x = prepare_batch(batch.images, self.normaliser, memory_format=self.memory_format)
        outputs = self.model(x)
        total, parts = self.loss(outputs, context)
        self.optimizer.zero_grad(set_to_none=not keep_grads)
        total.backward()
        self.optimizer.step()
        self.loss.after_step({k: v.detach() for k, v in outputs.items()}, context)
        if self.extra_bn_pass:  # a second training-mode forward: BatchNorm statistics update again
            with torch.no_grad():
                self.model(x)
        return torch.stack([total.detach(), *(v.detach() for v in parts.values())]).float()

    def move_to(self, epoch: int, steps_before: int) -> None:
        """Set the position the next step reports: its epoch (from 1) and the steps before it."""
        self.epoch.fill_(epoch)
        self.steps_before.fill_(steps_before)

    def __call__(self, batch: Batch, epoch: int, steps_before: int) -> torch.Tensor:
        self.move_to(epoch, steps_before)
        return self.run(batch)


class CudaGraphs:
    """PyTorch's CUDA graph calls on one device: side-stream warm-up, capture, a new memory
    pool when the graphs are dropped, and recovery after a failed capture."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.side = torch.cuda.Stream(device=device)
        self.pool = torch.cuda.graph_pool_handle()  # shared by the step's graphs (see capture)

    def warm_up(self, step: Callable[[], torch.Tensor]) -> torch.Tensor:
        """Run one eager step on the side stream, ordered after and before the current one."""
        with torch.cuda.device(self.device):
            current = torch.cuda.current_stream()
            self.side.wait_stream(current)
            with torch.cuda.stream(self.side):
                values = step()
            current.wait_stream(self.side)
        return values

    def capture(self, step: Callable[[], None]) -> Callable[[], None]:
        """Record ``step`` (nothing runs) and return the graph's replay.

        The graphs of one step share a memory pool, so they hold the memory of one step,
        not one per batch shape. That is safe in any replay order because nothing a graph
        allocates outlives its replay: what carries over between steps (parameters,
        optimizer and BatchNorm state, centres, the loss values) lives outside the pool and
        is updated in place. Only ``.grad`` lives in the pool: a replay writes it and the
        step consumes it, but between steps it may hold another graph's scratch values, so
        nothing outside the step may read gradients (clipping belongs inside the step)."""
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.device(self.device):
            current = torch.cuda.current_stream()
            try:
                # on the warm-up stream, so per-stream library state (cuBLAS workspaces)
                # exists before capture; thread_local: another thread's CUDA calls (a
                # tracking client, say) cannot void it
                with torch.cuda.graph(graph, pool=self.pool, stream=self.side,
                                      capture_error_mode="thread_local"):
                    step()
            finally:  # a capture that fails can leave its stream current
                torch.cuda.set_stream(current)
        return graph.replay

    def reset(self) -> None:
        """A new pool for the next graphs, once every graph and gradient of the old one is
        gone (the allocator does not let a capture join a pool no graph uses any more)."""
        self.pool = torch.cuda.graph_pool_handle()

    def recover(self) -> None:
        """After a failed capture: let the device finish what was queued before it."""
        torch.cuda.synchronize(self.device)


@contextmanager
def capturable(optimizer: torch.optim.Optimizer):
    """Mark the optimizer's groups capturable while the step is recorded. The fused kernels
    are the same either way (their step counts already live on the device); the flag only
    passes the optimizer's capture check, and is restored so eager steps do not warn."""
    saved = [group.get("capturable") for group in optimizer.param_groups]
    for group in optimizer.param_groups:
        if "capturable" in group:
            group["capturable"] = True
    try:
        yield
    finally:
        for group, value in zip(optimizer.param_groups, saved, strict=True):
            if value is not None:
                group["capturable"] = value


class GraphState(Enum):
    """Where a :class:`GraphedStep` stands (see the module docstring)."""

    WARMING_UP = "warming up"  # no graph yet (or the graphs were dropped): eager side-stream steps
    CAPTURED = "captured"  # at least one batch shape replays from a graph
    EAGER = "eager fallback"  # capture failed or cannot work: plain eager steps from now on


class GraphedStep(TrainStep):
    """The step captured in CUDA graphs, one per batch shape (see the module docstring).
    ``graphs`` replaces the CUDA calls (a stand-in on the CPU, for tests)."""

    def __init__(self, model: HashingModel, loss: CompositeLoss, optimizer: torch.optim.Optimizer,
                 normaliser: Normaliser, accel: Acceleration, total_steps: int,
                 graphs: CudaGraphs | None = None, extra_bn_pass: bool = False) -> None:
        super().__init__(model, loss, optimizer, normaliser, accel, total_steps, extra_bn_pass)
        self.graphs = graphs if graphs is not None else CudaGraphs(accel.device)
        self.state = GraphState.WARMING_UP
        self.reason = ""  # why the state is EAGER
        self.ungraphed_steps = 0  # steps whose batch shape had no graph
        self.seen: Counter[Shape] = Counter()  # such steps per batch shape
        self.replays: dict[Shape, Callable[[], None]] = {}
        self.inputs: dict[Shape, Batch] = {}  # each graph's static batch
        self.lrs: list[float] = []  # the learning rates the graphs were recorded with
        self.lr_changes = 0
        self.captures = 0
        self.values: torch.Tensor | None = None  # every graph writes its loss values here
        if not all(group.get("fused") for group in self.optimizer.param_groups):
            self._fall_back("the optimizer is not fused (a captured step needs its state on the device)")

    @property
    def status(self) -> str:
        if self.state is GraphState.EAGER:
            return f"fallback to eager: {self.reason}"
        if not self.captures:
            return "not captured (too few steps)"
        shapes = len(self.seen)
        return f"captured x{self.captures} ({shapes} batch shape{'s' if shapes > 1 else ''})"

    def __call__(self, batch: Batch, epoch: int, steps_before: int) -> torch.Tensor:
        self.move_to(epoch, steps_before)
        if self.state is not GraphState.EAGER:
            self._follow_learning_rate()
        if self.state is GraphState.EAGER:
            return self.run(batch)
        shape = (tuple(batch.images.shape), tuple(batch.labels.shape))
        if shape not in self.replays:
            self.ungraphed_steps += 1
            self.seen[shape] += 1
            if self._ready_to_capture(shape):
                self._capture(shape, batch)
            if self.state is GraphState.EAGER:
                return self.run(batch)
            if shape not in self.replays:
                keep = self.state is GraphState.CAPTURED
                return self.graphs.warm_up(lambda: self.run(batch, keep_grads=keep))
        static = self.inputs[shape]
        for target, value in zip(static, batch, strict=True):
            target.copy_(value)
        self.replays[shape]()
        return self.values

    def _ready_to_capture(self, shape: Shape) -> bool:
        """Once the warm-up is done and this shape has had an eager step (cuDNN autotunes a
        new shape on its first step, which a capture cannot contain), while graphs are left."""
        return (self.ungraphed_steps > WARMUP_STEPS and self.seen[shape] > 1
                and len(self.replays) < MAX_GRAPHS)

    def _follow_learning_rate(self) -> None:
        """At a milestone drop the graphs: they hold the old rate as a kernel argument."""
        lrs = [float(group["lr"]) for group in self.optimizer.param_groups]
        if lrs == self.lrs:
            return
        self._drop_graphs()
        self.lr_changes += bool(self.lrs)
        self.lrs = lrs
        if self.lr_changes > MAX_LR_CHANGES:
            self._fall_back(f"the learning rate changed more than {MAX_LR_CHANGES} times (each change captures again)")

    def _fall_back(self, reason: str) -> None:
        self.state, self.reason = GraphState.EAGER, reason

    def _drop_graphs(self) -> None:
        """Forget every graph, their static batches and the gradients in their pool."""
        if self.replays:
            self.replays.clear()
            self.inputs.clear()
            self.optimizer.zero_grad(set_to_none=True)
            self.graphs.reset()
        self.state = GraphState.WARMING_UP

    def _capture(self, shape: Shape, batch: Batch) -> None:
        """Record the step for batches of ``shape`` from static copies of this batch; on
        failure, eager steps from now on."""
        static = Batch(*(t.clone() for t in batch))
        if self.values is None:
            self.values = torch.zeros(len(self.names), device=batch.images.device)

        def record() -> None:
            self.values.copy_(self.run(static))

        try:
            with capturable(self.optimizer):
                replay = self.graphs.capture(record)
        except Exception as exc:  # noqa: BLE001 - any capture failure means: stay eager
            self.graphs.recover()
            cause = exc
            while cause.__context__ is not None:  # the step's own error, not capture_end's
                cause = cause.__context__
            message = str(cause).splitlines()[0] if str(cause) else ""
            self.replays.clear()
            self.inputs.clear()
            self.optimizer.zero_grad(set_to_none=True)  # drop the void capture's buffers
            self._fall_back(f"{type(cause).__name__}: {message}"[:300])
            return
        self.replays[shape], self.inputs[shape] = replay, static
        self.captures += 1
        self.state = GraphState.CAPTURED


def make_train_step(model: HashingModel, loss: CompositeLoss, optimizer: torch.optim.Optimizer,
                    normaliser: Normaliser, accel: Acceleration, total_steps: int,
                    extra_bn_pass: bool = False) -> TrainStep:
    """The run's step: graphed when ``accel.cuda_graph`` (see :class:`bench.training.acceleration.Acceleration`)."""
    cls = GraphedStep if accel.cuda_graph else TrainStep
    return cls(model, loss, optimizer, normaliser, accel, total_steps, extra_bn_pass=extra_bn_pass)
