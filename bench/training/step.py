"""One training step, run eagerly or replayed from a CUDA graph.

A step takes a uint8 batch already augmented (augmentation draws from the run's CPU
generator, so it stays outside) and its labels on the training device; it sets the memory
format, normalises, runs forward, loss, backward, the optimizer step and the loss parts'
after-step hooks (DCBH's centre rule), and returns the step's loss values ``[total,
part...]`` as one float32 device tensor: no host read, so the host can queue the next step
while the device works.

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

:attr:`TrainStep.status` says which path ran; it lands in the run's tags. The graph
mechanics sit behind :class:`CudaGraphs` so the bookkeeping is testable without a GPU.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from contextlib import contextmanager

import torch

from bench.data.preprocess import Normaliser, prepare_batch
from bench.training.assembly import CompositeLoss

WARMUP_STEPS = 3  # eager steps before capture (PyTorch's recipe uses 3; DDP would need 11)
MAX_GRAPHS = 16  # batch shapes captured at most (a balanced sampler's batches vary in size)
MAX_LR_CHANGES = 8  # learning-rate changes that capture again (step schedules have a few)
Shape = tuple[tuple[int, ...], tuple[int, ...]]


class TrainStep:
    """The eager training step (see the module docstring)."""

    def __init__(self, model: torch.nn.Module, loss: CompositeLoss, optimizer: torch.optim.Optimizer,
                 normaliser: Normaliser, memory_format: torch.memory_format = torch.contiguous_format) -> None:
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.normaliser = normaliser
        self.memory_format = memory_format
        self.names = ["total", *loss.names]  # the order of the returned values

    @property
    def status(self) -> str:
        return "eager"

    def run(self, images: torch.Tensor, labels: torch.Tensor, keep_grads: bool = False) -> torch.Tensor:
        """One eager step. ``keep_grads`` zeroes the gradients in place instead of dropping
        them (a graph's gradient buffers must stay where the graph writes them)."""
        outputs = self.model(prepare_batch(images, self.normaliser, memory_format=self.memory_format))
        total, parts = self.loss(outputs, labels)
        self.optimizer.zero_grad(set_to_none=not keep_grads)
        total.backward()
        self.optimizer.step()
        self.loss.after_step({k: v.detach() for k, v in outputs.items()}, labels)
        return torch.stack([total.detach(), *(v.detach() for v in parts.values())]).float()

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return self.run(images, labels)


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


class GraphedStep(TrainStep):
    """The step captured in CUDA graphs, one per batch shape (see the module docstring)."""

    def __init__(self, *args, graphs: CudaGraphs | None = None, warmup_steps: int = WARMUP_STEPS,
                 **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.graphs = graphs  # made on the first batch's device unless given
        self.warmup_steps = warmup_steps
        self.lr_changes = 0
        self.eager_steps = 0
        self.seen: Counter[Shape] = Counter()  # eager steps per batch shape
        self.replays: dict[Shape, Callable[[], None]] = {}
        self.inputs: dict[Shape, tuple[torch.Tensor, torch.Tensor]] = {}  # each graph's static batch
        self.lrs: list[float] = []  # the learning rates the graphs were recorded with
        self.captures = 0
        self.failure: str | None = None
        if not all(group.get("fused") for group in self.optimizer.param_groups):
            self.failure = "the optimizer is not fused (a captured step needs its state on the device)"
        self.values: torch.Tensor | None = None  # every graph writes its loss values here

    @property
    def status(self) -> str:
        if self.failure is not None:
            return f"fallback to eager: {self.failure}"
        if not self.captures:
            return "not captured (too few steps)"
        shapes = len(self.seen)
        return f"captured x{self.captures} ({shapes} batch shape{'s' if shapes > 1 else ''})"

    def __call__(self, images: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.failure is not None:
            return self.run(images, labels)
        if self.graphs is None:
            self.graphs = CudaGraphs(images.device)
        lrs = [float(group["lr"]) for group in self.optimizer.param_groups]
        if lrs != self.lrs:  # a milestone: the graphs hold the old rate as a kernel argument
            self._drop_graphs()
            self.lr_changes += bool(self.lrs)
            self.lrs = lrs
            if self.lr_changes > MAX_LR_CHANGES:
                self.failure = f"the learning rate changed more than {MAX_LR_CHANGES} times (each change captures again)"
                return self.run(images, labels)
        shape = (tuple(images.shape), tuple(labels.shape))
        if shape not in self.replays:
            self.eager_steps += 1
            self.seen[shape] += 1
            # capture once the warm-up is done and this shape has had an eager step (cuDNN
            # autotunes a new shape on its first step, which a capture cannot contain)
            ready = self.eager_steps > self.warmup_steps and self.seen[shape] > 1
            if not (ready and len(self.replays) < MAX_GRAPHS and self._capture(shape, images, labels)):
                if self.failure is not None:
                    return self.run(images, labels)
                keep = bool(self.replays)
                return self.graphs.warm_up(lambda: self.run(images, labels, keep_grads=keep))
        static_images, static_labels = self.inputs[shape]
        static_images.copy_(images)
        static_labels.copy_(labels)
        self.replays[shape]()
        return self.values

    def _drop_graphs(self) -> None:
        """Forget every graph, their static batches and the gradients in their pool."""
        if self.replays:
            self.replays.clear()
            self.inputs.clear()
            self.optimizer.zero_grad(set_to_none=True)
            self.graphs.reset()

    def _capture(self, shape: Shape, images: torch.Tensor, labels: torch.Tensor) -> bool:
        """Record the step for batches of ``shape`` from static copies of this batch;
        ``False`` (and eager steps from now on) when the step cannot be captured."""
        static_images, static_labels = images.clone(), labels.clone()
        if self.values is None:
            self.values = torch.zeros(len(self.names), device=images.device)

        def record() -> None:
            self.values.copy_(self.run(static_images, static_labels))

        try:
            with capturable(self.optimizer):
                replay = self.graphs.capture(record)
        except Exception as exc:  # noqa: BLE001 - any capture failure means: stay eager
            self.graphs.recover()
            cause = exc
            while cause.__context__ is not None:  # the step's own error, not capture_end's
                cause = cause.__context__
            message = str(cause).splitlines()[0] if str(cause) else ""
            self.failure = f"{type(cause).__name__}: {message}"[:300]
            self.replays.clear()
            self.inputs.clear()
            self.optimizer.zero_grad(set_to_none=True)  # drop the void capture's buffers
            return False
        self.replays[shape], self.inputs[shape] = replay, (static_images, static_labels)
        self.captures += 1
        return True


def make_train_step(model: torch.nn.Module, loss: CompositeLoss, optimizer: torch.optim.Optimizer,
                    normaliser: Normaliser, *, memory_format: torch.memory_format = torch.contiguous_format,
                    cuda_graph: bool = False) -> TrainStep:
    """The run's step: graphed when ``cuda_graph`` (see :class:`bench.training.acceleration.Acceleration`)."""
    cls = GraphedStep if cuda_graph else TrainStep
    return cls(model, loss, optimizer, normaliser, memory_format)
