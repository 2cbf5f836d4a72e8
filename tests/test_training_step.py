"""The training step: eager, and captured in a CUDA graph (bookkeeping checked on the CPU
through a stand-in for the graph calls; the real capture in the CUDA tests)."""

import dataclasses

import numpy as np
import pytest
import torch
from test_batching import faces
from torch.utils._python_dispatch import TorchDispatchMode

from bench.api.errors import BenchError
from bench.api.interfaces import BuildContext, LossPart
from bench.api.methods import TrainingSpec
from bench.api.pluginhost import load_plugins
from bench.config.protocol import ProtocolConfig
from bench.config.settings import method_config
from bench.data.preprocess import ChannelMeanStd, UnitScale
from bench.training.acceleration import Acceleration, AccelerationSpec, resolve_acceleration
from bench.training.assembly import CompositeLoss, build_optimizer, build_parts
from bench.training.batching import Batch, BatchSource
from bench.training.loop import Trainer
from bench.training.step import MAX_LR_CHANGES, GraphedStep, GraphState, TrainStep

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
aten = torch.ops.aten

#: Operators whose CUDA kernels wait for the device to hand a value to the host.
HOST_READS = {aten._local_scalar_dense, aten.nonzero, aten.masked_select, aten.bincount, aten._unique2,
              aten.unique_dim, aten.unique_consecutive, aten.repeat_interleave}


class HostReadLog(TorchDispatchMode):
    """Records every operator that would read back to the host on CUDA, including indexing
    with a boolean mask (which computes the mask's nonzero positions on the host)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        masks = func.overloadpacket in (aten.index, aten.index_put, aten.index_put_) and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] or []))
        if func.overloadpacket in HOST_READS or masks:
            self.found.append(str(func))
        return func(*args, **kwargs)


class ReplayingGraphs:
    """Stands in for :class:`bench.training.step.CudaGraphs` on the CPU: a "capture" records
    the step without running it (as CUDA does) and a replay runs it; ``fail`` makes every
    capture raise."""

    def __init__(self, fail: str | None = None) -> None:
        self.fail = fail
        self.counts = {"warm_up": 0, "capture": 0, "replay": 0, "reset": 0, "recover": 0}

    def warm_up(self, step):
        self.counts["warm_up"] += 1
        return step()

    def capture(self, step):
        self.counts["capture"] += 1
        if self.fail:
            raise RuntimeError(self.fail)

        def replay():
            self.counts["replay"] += 1
            step()

        return replay

    def reset(self):
        self.counts["reset"] += 1

    def recover(self):
        self.counts["recover"] += 1


@pytest.fixture(scope="module")
def host():
    return load_plugins()


def plain_accel(device="cpu") -> Acceleration:
    """The device's float32 settings with the plain memory format."""
    accel = resolve_acceleration(AccelerationSpec(precision="fp32"), torch.device(device))
    return dataclasses.replace(accel, channels_last=False)


def whole(x, y, device="cpu") -> Batch:
    """All of ``x`` as one batch, samples 0..N-1."""
    return Batch(torch.from_numpy(x).to(device), torch.from_numpy(y).to(device),
                 torch.arange(len(y), device=device))


def constant_schedule(optimizer):
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


def dcbh_parts(host, device="cpu", classes=4, size=16, seed=0):
    """DCBH's own parts (VGG trunk, block head, centre loss with its after-step rule), small."""
    config = method_config("dcbh", host.methods.get("dcbh"), ProtocolConfig(batch_size=8))
    torch.manual_seed(seed)
    model, loss = build_parts(host, config, BuildContext(12, classes, (3, size, size), seed))
    return config, model.to(device), loss.to(device)


def train_dcbh(host, step_kind, graphs=None, device="cpu", epochs=3):
    """Three epochs of 37 images in batches of 8 (an odd last batch each epoch), with a
    learning-rate milestone after step 9; returns the trained state and the result."""
    x, y = faces([10, 9, 11, 7], size=16, seed=3)
    normaliser = ChannelMeanStd(x, np.zeros(len(y), np.int8))
    config, model, loss = dcbh_parts(host, device)
    optimizer = build_optimizer(config.optimizer, model, loss, fused=True)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[9], gamma=0.5)
    source = BatchSource(x, y, batch_size=8, sampler="shuffle", seed=1, device=device)
    total, accel = len(source) * epochs, plain_accel(device)
    if step_kind == "graphed":
        step = GraphedStep(model, loss, optimizer, normaliser, accel, total, graphs=graphs)
    else:
        step = TrainStep(model, loss, optimizer, normaliser, accel, total)
    spec = TrainingSpec(epochs=epochs, batch_size=8, sampler="shuffle", selection="last")
    result = Trainer(step, scheduler, source, spec, sync_every=1).fit()
    state = {**model.state_dict(), **{f"loss.{k}": v for k, v in loss.state_dict().items()}}
    return state, result, step


def test_graphed_steps_train_exactly_as_eager_steps(host):
    eager_state, eager, _ = train_dcbh(host, "eager")
    graphs = ReplayingGraphs()
    state, graphed, step = train_dcbh(host, "graphed", graphs)
    # 15 steps: 3 epochs x (4 full + 1 odd batch); steps 1-3 warm up, step 4 captures the
    # full batch, step 5 runs the odd one eagerly; after the milestone (step 9) the odd batch
    # (step 10, its second) and the full one (step 11) are captured again, the rest replays
    assert graphs.counts == {"warm_up": 4, "capture": 3, "replay": 11, "reset": 1, "recover": 0}
    assert graphed.step_status == "captured x3 (2 batch shapes)" and eager.step_status == "eager"
    assert step.state is GraphState.CAPTURED
    assert [h["loss/total"] for h in graphed.history] == [h["loss/total"] for h in eager.history]
    for name, value in eager_state.items():
        assert torch.equal(state[name], value), name
    # each graph reads its batches from static buffers, refilled before every replay
    assert sorted(images.shape[0] for images, _, _ in step.inputs.values()) == [5, 8]


class ContextProbe(LossPart):
    """Counts each sample's visits per epoch and records each step's epoch, in buffers updated
    in place from the step context's tensors (as a part that a CUDA graph captures must)."""

    def __init__(self, train_size: int, steps: int, epochs: int) -> None:
        super().__init__()
        self.register_buffer("visits", torch.zeros(epochs + 1, train_size, dtype=torch.int64))
        self.register_buffer("epoch_of_step", torch.zeros(steps, dtype=torch.int64))
        self.total_steps = 0

    def forward(self, outputs, context):
        self.visits.index_put_((context.epoch.expand_as(context.indices), context.indices),
                               torch.ones_like(context.indices), accumulate=True)
        self.epoch_of_step.index_put_((context.step.view(1),), context.epoch.view(1))
        self.total_steps = context.total_steps
        return outputs["u"].pow(2).mean()


def test_a_captured_step_reads_every_steps_indices_epoch_and_step(host):
    """Graph replays run on static buffers: the batch's indices are copied into them and the
    epoch and step refilled before every replay, so the context is each step's own."""
    x, y = faces([10, 9, 11, 7], size=16, seed=3)
    normaliser = ChannelMeanStd(x, np.zeros(len(y), np.int8))
    config, model, _ = dcbh_parts(host)
    probe = ContextProbe(len(y), steps=15, epochs=3)
    loss = CompositeLoss([("probe", 1.0, probe)])
    optimizer = build_optimizer(config.optimizer, model, loss, fused=True)
    graphs = ReplayingGraphs()
    step = GraphedStep(model, loss, optimizer, normaliser, plain_accel(), 15, graphs=graphs)
    source = BatchSource(x, y, batch_size=8, sampler="shuffle", seed=1)
    Trainer(step, constant_schedule(optimizer), source, TrainingSpec(epochs=3, selection="last"), 1).fit()
    assert graphs.counts["replay"] == 11 and step.state is GraphState.CAPTURED
    assert probe.visits[0].eq(0).all() and probe.visits[1:].eq(1).all()  # each sample once per epoch
    assert probe.epoch_of_step.tolist() == [1] * 5 + [2] * 5 + [3] * 5 and probe.total_steps == 15


def test_a_failed_capture_falls_back_to_eager_steps_and_says_why(host):
    eager_state, _, _ = train_dcbh(host, "eager", epochs=1)
    graphs = ReplayingGraphs(fail="operation not permitted when stream is capturing")
    state, result, step = train_dcbh(host, "graphed", graphs, epochs=1)
    assert result.step_status == "fallback to eager: RuntimeError: operation not permitted when stream is capturing"
    assert step.state is GraphState.EAGER
    assert graphs.counts == {"warm_up": 3, "capture": 1, "replay": 0, "reset": 0, "recover": 1}
    for name, value in eager_state.items():
        assert torch.equal(state[name], value), name


def test_a_short_run_never_captures_and_says_so(host):
    x, y = faces([4, 4], size=16)
    normaliser = UnitScale(x, np.zeros(len(y), np.int8))
    config, model, loss = dcbh_parts(host, classes=2)
    optimizer = build_optimizer(config.optimizer, model, loss, fused=True)
    step = GraphedStep(model, loss, optimizer, normaliser, plain_accel(), 1, graphs=ReplayingGraphs())
    values = step(whole(x, y), 1, 0)
    assert values.shape == (1 + len(loss.names),) and step.names == ["total", *loss.names]
    assert step.status == "not captured (too few steps)" and step.state is GraphState.WARMING_UP
    assert TrainStep(model, loss, optimizer, normaliser, plain_accel(), 1).status == "eager"
    unfused = build_optimizer(config.optimizer, model, loss, fused=False)
    assert GraphedStep(model, loss, unfused, normaliser, plain_accel(), 1, graphs=ReplayingGraphs()).status == (
        "fallback to eager: the optimizer is not fused (a captured step needs its state on the device)")


def test_a_failed_capture_reports_the_steps_own_error_and_a_busy_schedule_stays_eager(host):
    class VoidedCapture(ReplayingGraphs):
        def capture(self, step):  # as torch.cuda.graph: capture_end fails after the step did
            try:
                raise RuntimeError("CUDA error: operation not permitted when stream is capturing")
            finally:
                raise RuntimeError("operation failed due to a previous error during capture")

    _, result, _ = train_dcbh(host, "graphed", VoidedCapture(), epochs=1)
    assert result.step_status == ("fallback to eager: RuntimeError: CUDA error: operation not "
                                  "permitted when stream is capturing")
    x, y = faces([8, 8], size=16)
    normaliser = UnitScale(x, np.zeros(len(y), np.int8))
    config, model, loss = dcbh_parts(host, classes=2)
    optimizer = build_optimizer(config.optimizer, model, loss, fused=True)
    graphs = ReplayingGraphs()
    step = GraphedStep(model, loss, optimizer, normaliser, plain_accel(), 13, graphs=graphs)
    batch = whole(x, y)
    for k in range(4):  # warm up, capture
        step(batch, 1, k)
    assert step.state is GraphState.CAPTURED
    for k in range(MAX_LR_CHANGES + 1):  # a schedule that changes the rate every step
        optimizer.param_groups[0]["lr"] = 1e-3 / (k + 2)
        step(batch, 1, 4 + k)
    assert graphs.counts["capture"] == 1 + MAX_LR_CHANGES and step.state is GraphState.EAGER
    assert step.status.startswith(f"fallback to eager: the learning rate changed more than {MAX_LR_CHANGES} times")


def test_cuda_graph_choice_resolves_per_device_and_is_tagged():
    cpu = torch.device("cpu")
    with pytest.raises(BenchError, match="--cuda-graph on with --compile"):
        resolve_acceleration(AccelerationSpec(cuda_graph="on", compile=True), torch.device("cuda"))
    assert resolve_acceleration(AccelerationSpec(), cpu).cuda_graph is False
    assert resolve_acceleration(AccelerationSpec(cuda_graph="off"), cpu).tags()["accel.cuda_graph"] == "false"
    with pytest.raises(BenchError, match="--cuda-graph on needs a CUDA device"):
        resolve_acceleration(AccelerationSpec(cuda_graph="on"), cpu)


def test_cuda_graph_on_without_a_gpu_is_a_one_line_error(cli):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    code, _, err = cli("run", "--method", "dcbh", "--bits", "12", "--cuda-graph", "on")
    assert code == 2 and err.strip() == (
        "error: --cuda-graph on needs a CUDA device, but the run is on cpu; use auto or off")


@pytest.mark.parametrize("method", ["dcbh", "ddh", "dsh"])
def test_built_in_steps_never_read_back_to_the_host(host, method):
    """What a CUDA graph cannot capture and what stalls an eager CUDA step, checked on the
    operators a CPU step runs (forward, loss, backward, optimizer, after-step rules)."""
    config = method_config(method, host.methods.get(method), ProtocolConfig(batch_size=16))
    x, y = faces([4] * 4, size=32, seed=2)
    torch.manual_seed(0)
    model, loss = build_parts(host, config, BuildContext(12, 4, (3, 32, 32), 0))
    optimizer = build_optimizer(config.optimizer, model, loss, fused=True)
    step = TrainStep(model, loss, optimizer, ChannelMeanStd(x, np.zeros(len(y), np.int8)),
                     plain_accel(), 2)
    batch = whole(x, y)
    step(batch, 1, 0)  # the first step creates the optimizer's state
    with HostReadLog() as log:
        step(batch, 1, 1)
    assert log.found == []
    with HostReadLog() as log:  # the log itself sees what it must
        torch.zeros(3)[torch.tensor([True, False, True])].sum().item()
    assert log.found == ["aten.index.Tensor", "aten._local_scalar_dense.default"]


@pytest.mark.cuda
@needs_cuda
def test_cuda_graphed_dcbh_matches_eager_training(monkeypatch):
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", True)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", False)
    host = load_plugins()
    eager_state, _, _ = train_dcbh(host, "eager", device="cuda")
    state, result, _ = train_dcbh(host, "graphed", device="cuda")
    assert result.step_status == "captured x3 (2 batch shapes)"
    for name, value in eager_state.items():
        torch.testing.assert_close(state[name].float(), value.float(), rtol=1e-3, atol=1e-4, msg=name)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("method", ["dcbh", "ddh", "dsh"])
def test_cuda_steps_never_wait_for_the_device_and_capture(method, monkeypatch):
    """No host read-back inside a step (any would stall the queue and void a capture)."""
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", torch.backends.cudnn.benchmark)  # restored after
    host = load_plugins()
    device = torch.device("cuda")
    accel = resolve_acceleration(AccelerationSpec(), device)
    accel.activate()
    config = method_config(method, host.methods.get(method), ProtocolConfig(batch_size=40))
    x, y = faces([10] * 8, size=32, seed=2)
    torch.manual_seed(0)
    model, loss = build_parts(host, config, BuildContext(12, 8, (3, 32, 32), 0))
    model, loss = accel.prepare_model(model.to(device)), loss.to(device)
    optimizer = build_optimizer(config.optimizer, model, loss, **accel.optimizer_options())
    normaliser = ChannelMeanStd(x, np.zeros(len(y), np.int8))
    batch = whole(x, y, device)
    eager = TrainStep(model, loss, optimizer, normaliser, accel, 3)
    eager(batch, 1, 0)  # first step: optimizer state, cuDNN autotuning
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for k in range(2):
            eager(batch, 1, 1 + k)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    graphed = GraphedStep(model, loss, optimizer, normaliser, accel, 6)
    values = [graphed(batch, 1, k) for k in range(6)]
    assert graphed.status.startswith("captured x1 "), graphed.status
    assert torch.isfinite(values[-1]).all()


def test_cuda_graph_auto_is_eager_on_cuda_until_measured_and_says_so(cli):
    """Issue 24 item 12: no CUDA path has run the rewritten step, so auto must not capture."""
    cuda = torch.device("cuda")
    spec = dict(precision="fp32", device_data_mb=1.0)  # nothing below asks a GPU
    auto = resolve_acceleration(AccelerationSpec(**spec), cuda)
    assert auto.cuda_graph is False and auto.tags()["accel.cuda_graph"] == "false"
    assert "eager on CUDA" in auto.tags()["accel.cuda_graph_note"]
    assert "--cuda-graph on opts in" in auto.tags()["accel.cuda_graph_note"]
    assert resolve_acceleration(AccelerationSpec(cuda_graph="on", **spec), cuda).cuda_graph is True
    assert "accel.cuda_graph_note" not in resolve_acceleration(AccelerationSpec(cuda_graph="off", **spec), cuda).tags()
    assert "accel.cuda_graph_note" not in resolve_acceleration(AccelerationSpec(), torch.device("cpu")).tags()
    code, out, _ = cli("run", "--help")
    assert code == 0 and "eager" in " ".join(out.split()) and "on opts in" in " ".join(out.split())
