"""Acceleration: mixed precision confined to the backbone, memory format, fused optimizers,
deferred loss reads, device-side encoding, and the harness path equal to a plain PyTorch
loop over a torchvision DataLoader."""

import numpy as np
import pytest
import torch
from test_batching import TorchvisionFaces, faces
from torch import nn
from torch.utils.data import DataLoader

from bench import hookimpl
from bench.api.errors import BenchError
from bench.api.interfaces import Backbone, BuildContext, StepContext
from bench.api.methods import DeepMethod, DeepMethodConfig, LossTerm, PartSpec, TrainingSpec
from bench.api.pluginhost import load_plugins
from bench.cli.parsing import acceleration_spec
from bench.config.protocol import ProtocolConfig
from bench.data.preprocess import ChannelMeanStd, UnitScale
from bench.evaluation.codes import sign_codes
from bench.evaluation.encoding import encode_codes, encode_relaxed
from bench.running.identity import execution_tags
from bench.running.planning import plan_runs
from bench.running.prepared import DeepRun, FittedRun
from bench.running.request import RunRequest
from bench.training.acceleration import (
    Acceleration,
    AccelerationSpec,
    resolve_acceleration,
)
from bench.training.assembly import build_optimizer, build_parts, build_scheduler
from bench.training.batching import BatchSource
from bench.training.loop import RunFailed, TrainCallbacks, Trainer
from bench.training.meter import LossMeter
from bench.training.step import make_train_step

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


class TinyConv(Backbone):
    """Two conv blocks with BatchNorm and global pooling: the shape of the real backbones."""

    def __init__(self, ctx: BuildContext, width: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(ctx.input_shape[0], width, 3, padding=1, bias=False), nn.BatchNorm2d(width), nn.ReLU(),
            nn.MaxPool2d(2), nn.Conv2d(width, 2 * width, 3, padding=1, bias=False), nn.BatchNorm2d(2 * width),
            nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        )
        self.feature_dims = {"pooled": 2 * width}

    def forward(self, images):
        return {"pooled": self.net(images)}


class ConvHashConfig(DeepMethodConfig):
    backbone: PartSpec = PartSpec(name="tiny-conv")
    head: PartSpec = PartSpec(name="fc")
    losses: list[LossTerm] = [LossTerm(name="ce_code"), LossTerm(name="quantization", weight=0.1)]
    training: TrainingSpec = TrainingSpec(batch_size=8, sampler="shuffle", selection="last")


class ConvHash(DeepMethod):
    Config = ConvHashConfig


class AccelPlugin:
    @hookimpl
    def register_backbones(self, register):
        register("tiny-conv", TinyConv)

    @hookimpl
    def register_methods(self, register):
        register("conv-hash", ConvHash())


@pytest.fixture(scope="module")
def host():
    return load_plugins(extra_plugins={"accel-test": AccelPlugin()})


def build(host, seed=0, classes=3, size=8):
    torch.manual_seed(seed)
    return build_parts(host, ConvHashConfig(), BuildContext(12, classes, (3, size, size), seed))


def cpu_accel(**changes) -> Acceleration:
    base = resolve_acceleration(AccelerationSpec(precision="fp32"), torch.device("cpu"))
    return Acceleration(**{**base.__dict__, "threads": None, **changes})


def trainer(model, loss, optimizer, total_steps, source, normaliser, spec, accel) -> Trainer:
    """The harness's trainer of these parts under ``accel``, with the method's schedule."""
    step = make_train_step(model, loss, optimizer, normaliser, accel, total_steps)
    scheduler = build_scheduler(ConvHashConfig().schedule, optimizer, total_steps)
    return Trainer(step, scheduler, source, spec, accel.sync_every)


def test_cpu_defaults_and_tags():
    a = resolve_acceleration(AccelerationSpec(precision="bf16"), torch.device("cpu"))
    assert (a.precision, a.channels_last, a.fused_optimizer, a.compile) == ("bf16", True, True, False)
    assert a.autocast_dtype == torch.bfloat16 and a.memory_format == torch.channels_last
    tags = a.tags()
    assert tags["accel.precision"] == "bf16" and tags["accel.precision_scope"] == "backbone"
    assert tags["accel.channels_last"] == "true" and int(tags["accel.threads"]) >= 1
    assert tags["deviation.precision"].startswith("bf16")
    assert "deviation.precision" not in resolve_acceleration(AccelerationSpec(precision="fp32"), torch.device("cpu")).tags()


def test_auto_precision_on_cpu_follows_native_bf16(monkeypatch):
    for native, expected in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda n=native: n, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: False, raising=False)
        assert resolve_acceleration(AccelerationSpec(), torch.device("cpu")).precision == expected


def test_bad_precision_is_a_one_line_error(cli):
    with pytest.raises(BenchError, match="--precision 'fp16'"):
        acceleration_spec("fp16")
    code, _, err = cli("run", "--method", "lsh", "--bits", "8", "--precision", "fp16")
    assert code == 2 and "--precision 'fp16'" in err


def test_deep_runs_are_tagged_with_their_acceleration(host):
    [run] = plan_runs(host, RunRequest(methods=["conv-hash"], bits=[12], seeds=[0], protocol=ProtocolConfig(), device="cpu", acceleration=AccelerationSpec(precision="bf16")))
    tags = execution_tags(run.device, run.acceleration)
    assert tags["facehash.accel.precision"] == "bf16" and tags["facehash.accel.compile"] == "false"
    [lsh] = plan_runs(host, RunRequest(methods=["lsh"], bits=[12], seeds=[0], protocol=ProtocolConfig(), device="cpu"))
    assert isinstance(run, DeepRun) and isinstance(lsh, FittedRun) and not hasattr(lsh, "acceleration")
    fitted = execution_tags(lsh.device, None)  # the device and CPU facts, no acceleration
    assert fitted["facehash.device"] == "cpu" and not any(k.startswith("facehash.accel.") for k in fitted)


def test_an_explicit_precision_is_part_of_the_config_hash(host):
    def spec(method, precision):
        [s] = plan_runs(host, RunRequest(methods=[method], bits=[12], seeds=[0], protocol=ProtocolConfig(), acceleration=AccelerationSpec(precision=precision)))
        return s.spec

    hashes = {p: spec("conv-hash", p).config_hash() for p in ("auto", "fp32", "bf16")}
    assert len(set(hashes.values())) == 3  # an fp32 run never stands in for a default one
    assert hashes["auto"] == plan_runs(host, RunRequest(methods=["conv-hash"], bits=[12], seeds=[0], protocol=ProtocolConfig()))[0].spec.config_hash()
    assert spec("conv-hash", "auto").config_hash() == spec("conv-hash", "auto").config_hash()
    # fitted methods do not train: the precision does not apply and does not split their runs
    assert spec("lsh", "fp32").config_hash() == spec("lsh", "auto").config_hash()


def test_bf16_runs_the_backbone_only_and_everything_after_stays_float32(host):
    model, loss = build(host)
    cpu_accel(precision="bf16", channels_last=False).prepare_model(model)
    seen = {}

    def record(name):
        def hook(module, inputs, output):
            seen[name] = output.dtype
        return hook

    model.backbone.net[0].register_forward_hook(record("conv"))
    model.head.linear.register_forward_hook(record("head"))
    x, y = faces([4, 4, 4], size=8)
    out = model(torch.from_numpy(x).float() / 255)
    total, parts = loss(out, StepContext.of(torch.from_numpy(y)))
    assert seen == {"conv": torch.bfloat16, "head": torch.float32}
    assert out["u"].dtype == out["feat:pooled"].dtype == total.dtype == torch.float32
    total.backward()
    assert all(p.grad is not None and p.grad.dtype == torch.float32 for p in model.parameters())


def test_prepare_model_keeps_parameter_names_and_uses_channels_last(host):
    model, _ = build(host)
    names = list(model.state_dict())
    cpu_accel().prepare_model(model)
    assert list(model.state_dict()) == names
    assert model.backbone.net[0].weight.is_contiguous(memory_format=torch.channels_last)
    plain, _ = build(host, seed=1)
    plain.load_state_dict(model.state_dict())


def test_fused_optimizer_is_requested_through_build_optimizer(host):
    model, loss = build(host)
    config = ConvHashConfig()
    assert build_optimizer(config.optimizer, model, loss, fused=True).defaults["fused"] is True
    assert not build_optimizer(config.optimizer, model, loss).defaults.get("fused")


def reference_steps(model, loss, source, normaliser, config, steps):
    """A plain PyTorch loop: torchvision DataLoader, float32, default optimizer, loss.item()."""
    x = source.images.numpy()
    mean, std = (t.tolist() for t in normaliser.stats[0])
    from torchvision import transforms

    transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])
    loader = DataLoader(TorchvisionFaces(x, source.labels.numpy(), transform),
                        batch_sampler=source.index_batches()[:steps])
    optimizer = build_optimizer(config.optimizer, model, loss)
    values = []
    for images, labels in loader:
        outputs = model(images)
        total, _ = loss(outputs, StepContext.of(labels))
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        loss.after_step({k: v.detach() for k, v in outputs.items()}, StepContext.of(labels))
        values.append(total.item())
    return values


@pytest.mark.parametrize("channels_last", [False, True])
def test_harness_training_equals_a_plain_pytorch_loop(host, channels_last):
    """Bit for bit with the plain layout and optimizer; with channels_last and the fused
    optimizer (the CPU defaults) equal up to float32 rounding."""
    x, y = faces([8, 8, 8], size=8, seed=3)
    normaliser = ChannelMeanStd(x, np.zeros(len(y), np.int8))
    config = ConvHashConfig()
    spec = TrainingSpec(epochs=1, batch_size=8, sampler="shuffle", selection="last")
    model, loss = build(host)
    ref_model, ref_loss = build(host)
    accel = cpu_accel(channels_last=channels_last, fused_optimizer=channels_last)
    accel.prepare_model(model)
    optimizer = build_optimizer(config.optimizer, model, loss, **accel.optimizer_options())
    source = BatchSource(x, y, batch_size=8, sampler="shuffle", seed=5)
    harness_values = []
    trainer(model, loss, optimizer, 3, source, normaliser, spec, accel).fit(
        TrainCallbacks(on_step=lambda step, value: harness_values.append(value)))
    expected = reference_steps(ref_model, ref_loss, BatchSource(x, y, batch_size=8, sampler="shuffle", seed=5),
                               normaliser, config, 3)
    if channels_last:  # other convolution and optimizer kernels: equal up to float32 rounding
        np.testing.assert_allclose(harness_values, expected, rtol=1e-5)
        for a, b in zip(model.parameters(), ref_model.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
    else:
        assert harness_values == expected
        assert all(torch.equal(a, b) for a, b in zip(model.parameters(), ref_model.parameters(), strict=True))


def test_loss_is_read_back_every_sync_every_steps_and_nan_still_stops_the_run(host):
    x, y = faces([8, 8, 8], size=8)
    normaliser = UnitScale(x, np.zeros(len(y), np.int8))
    model, loss = build(host)
    optimizer = build_optimizer(ConvHashConfig().optimizer, model, loss)
    spec = TrainingSpec(epochs=1, batch_size=3, sampler="sequential", selection="last")
    steps = []
    source = BatchSource(x, y, batch_size=3, sampler="sequential")
    trainer(model, loss, optimizer, 8, source, normaliser, spec, cpu_accel(sync_every=3)).fit(
        TrainCallbacks(on_step=lambda step, value: steps.append(step)))
    assert steps == [3, 6]
    meter = LossMeter(["total"], sync_every=3)
    values = [meter.add(torch.tensor([v])) for v in (1.0, float("nan"), 2.0, 3.0)]
    assert values[:2] == [None, None] and np.isnan(values[2]) and values[3] is None
    with torch.no_grad():
        model.head.linear.weight.fill_(float("nan"))
    with pytest.raises(RunFailed, match="non-finite loss at step 3 .*read every 3 steps"):
        trainer(model, loss, optimizer, 8, source, normaliser, spec, cpu_accel(sync_every=3)).fit()


def test_codes_are_signed_on_the_device_as_numpy_would(host):
    model, _ = build(host)
    x, y = faces([5, 5, 6], size=8)
    normaliser = ChannelMeanStd(x, np.zeros(len(y), np.int8))
    u = encode_relaxed(model, x, normaliser, 0, torch.device("cpu"), batch_size=4).numpy()
    codes = encode_codes(model, x, normaliser, 0, torch.device("cpu"), batch_size=4)
    assert codes.dtype == np.int8 and np.array_equal(codes, sign_codes(u))
    assert np.array_equal(codes, encode_codes(model, torch.from_numpy(x), normaliser, 0, torch.device("cpu")))
    assert model.training  # encoding restores the mode


@pytest.mark.cuda
@needs_cuda
def test_cuda_bf16_training_is_finite_fused_and_codes_agree_with_float32(host):
    device = torch.device("cuda")
    x, y = faces([16] * 4, size=16, seed=8)
    normaliser = ChannelMeanStd(x, np.zeros(len(y), np.int8))
    spec = TrainingSpec(epochs=3, batch_size=16, sampler="shuffle", selection="last")
    codes = {}
    for precision in ("fp32", "bf16"):
        accel = resolve_acceleration(AccelerationSpec(precision=precision), device)
        assert accel.fused_optimizer and accel.channels_last and accel.sync_every > 1
        model, loss = build(host, classes=4, size=16)
        model, loss = accel.prepare_model(model.to(device)), loss.to(device)
        optimizer = build_optimizer(ConvHashConfig().optimizer, model, loss, **accel.optimizer_options())
        assert optimizer.defaults["fused"] is True
        source = BatchSource(x, y, batch_size=16, sampler="shuffle", seed=0, device=device,
                             memory_cap_bytes=accel.data_cap_bytes)
        assert source.resident and source.images.device.type == "cuda"
        result = trainer(model, loss, optimizer, 12, source, normaliser, spec, accel).fit()
        assert all(np.isfinite(h["loss/total"]) for h in result.history)
        out = model(torch.from_numpy(x[:4]).to(device).float())
        assert out["u"].dtype == torch.float32
        codes[precision] = encode_codes(model, source.images, normaliser, 0, device)
    assert (codes["fp32"] == codes["bf16"]).mean() > 0.8


@pytest.mark.cuda
@needs_cuda
def test_cuda_compiled_model_trains_and_keeps_parameter_names(host):
    device = torch.device("cuda")
    accel = resolve_acceleration(AccelerationSpec(compile=True), device)
    model, loss = build(host)
    names = list(model.state_dict())
    model, loss = accel.prepare_model(model.to(device)), loss.to(device)
    assert list(model.state_dict()) == names
    x, y = faces([8, 8, 8], size=8)
    normaliser = UnitScale(x, np.zeros(len(y), np.int8))
    optimizer = build_optimizer(ConvHashConfig().optimizer, model, loss, **accel.optimizer_options())
    source = BatchSource(x, y, batch_size=8, sampler="sequential", device=device)
    result = trainer(model, loss, optimizer, 3, source, normaliser,
                     TrainingSpec(epochs=1, batch_size=8, sampler="sequential", selection="last"), accel).fit()
    assert np.isfinite(result.history[0]["loss/total"])
