"""Devices without a GPU: every tensor made where it will be used, --device auto, --dtype, checkpoints across devices.

No GPU is on the development machines, so the first tests run every registered model on a pretend
accelerator: a tensor subclass that holds its data on the CPU but says it lives on the `meta` device.
Every operation is checked the way a GPU would check it (all tensor arguments on one device, 0-dim
host scalars excepted, random generators on the device they draw for); a factory call that names the
device (device=x.device) makes a tensor there, one that does not makes a host tensor, so a forgotten
device= fails at once. Unlike the real meta device (no data), the data is real, so data-dependent
operations (nonzero, item, tolist, unique) work and whole code paths run unchanged.
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import replace

import pytest
import torch
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map

from makemore import checkpoint, checks, lrfind
from makemore.cli import main
from makemore.config import ConfigError
from makemore.device import autocast_dtype, resolve_device
from makemore.evaluate import evaluate
from makemore.models import MODELS, SequenceModel
from makemore.sample import generate_tagged
from makemore.train import Batches, make_optimizer, train
from tests.conftest import quick_config, small_model

AWAY = torch.device("meta")  # the pretend accelerator's name
CPU = torch.device("cpu")
# operations that legitimately take tensors from two devices: copies between them
CROSSING = {torch.ops.aten.copy_.default, torch.ops.aten._to_copy.default}


# in-place operations that change a tensor's shape or strides, not its data (nn.RNN's batch_first transposes)
RESHAPED_IN_PLACE = {torch.ops.aten.transpose_.default, torch.ops.aten.t_.default, torch.ops.aten.squeeze_.dim,
                     torch.ops.aten.unsqueeze_.default, torch.ops.aten.swapdims_.default}


class WrongDevice(AssertionError):
    """A tensor met tensors of another device: on a GPU this operation would raise."""


class Away(torch.Tensor):
    """A tensor on the pretend accelerator: real data on the CPU, reported as on AWAY."""

    @staticmethod
    def __new__(cls, elem: torch.Tensor):
        return torch.Tensor._make_wrapper_subclass(cls, elem.size(), strides=elem.stride(),
                                                   storage_offset=elem.storage_offset(), dtype=elem.dtype,
                                                   layout=elem.layout, device=AWAY, requires_grad=elem.requires_grad)

    def __init__(self, elem: torch.Tensor):
        self.elem = elem

    def __repr__(self):
        return f"Away({self.elem!r})"

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.Tensor.tolist, torch.Tensor.__reduce_ex__):  # copies to the host: read the real data
            return func(args[0].elem, *args[1:], **kwargs)
        with torch._C.DisableTorchFunctionSubclass():
            return func(*args, **kwargs)

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise AssertionError(f"{func} ran outside the pretend device's mode")


class AwayGenerator(torch.Generator):
    """torch.Generator(device=AWAY): a CPU generator that says it lives on AWAY."""

    def __new__(cls, device="cpu"):
        generator = super().__new__(cls, device="cpu")
        generator.away = torch.device(device).type == AWAY.type
        return generator

    @property
    def device(self):
        return AWAY if self.away else CPU


class CheckCalls(TorchFunctionMode):
    """Python-level calls: tensors from Python data made on AWAY (they bypass the dispatcher), and random
    draws checked to use a generator on the device they draw for (a GPU refuses a CPU generator)."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.tensor, torch.as_tensor) and torch.device(kwargs.get("device") or CPU).type == AWAY.type:
            return Away(func(*args, **{**kwargs, "device": CPU}))
        generator = kwargs.get("generator")
        if isinstance(generator, torch.Generator):
            tensors = [a for a in args if isinstance(a, torch.Tensor)]
            target = torch.device(kwargs.get("device") or (tensors[0].device if tensors else CPU))
            if target.type != generator.device.type:
                raise WrongDevice(f"{func.__name__}: a generator on {generator.device} draws for {target}")
        return func(*args, **kwargs)


class CheckDevices(TorchDispatchMode):
    """Runs every operation on the real data; fails one that mixes AWAY tensors with host tensors."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        flat, _ = tree_flatten((args, kwargs))
        away = any(isinstance(t, Away) for t in flat)
        if any(isinstance(t, torch.Tensor) and not isinstance(t, Away) and t.device == AWAY for t in flat):
            raise AssertionError(f"{func}: a real meta tensor, made by a call this harness does not intercept yet")
        host = [t for t in flat if isinstance(t, torch.Tensor) and not isinstance(t, Away) and t.dim() > 0]
        written = func._schema.arguments[0].alias_info if func._schema.arguments else None
        if written is not None and written.is_write and args and isinstance(args[0], torch.Tensor):
            host += [args[0]] if not isinstance(args[0], Away) else []  # a host scalar may be read, not written
        if away and host and func not in CROSSING:
            raise WrongDevice(f"{func}: a host tensor of shape {tuple(host[0].shape)} meets tensors on the device")
        on_away = away
        if kwargs.get("device") is not None:  # a factory, or a copy: made where it says
            on_away = torch.device(kwargs["device"]).type == AWAY.type
            kwargs["device"] = CPU
        unwrapped, kwargs = tree_map(lambda t: t.elem if isinstance(t, Away) else t, (args, kwargs))
        out = func(*unwrapped, **kwargs)
        if func in RESHAPED_IN_PLACE and isinstance(args[0], Away):  # the wrapper's shape must follow its data's
            with torch._C._ExcludeDispatchKeyGuard(torch._C.DispatchKeySet(torch._C.DispatchKey.Python)):
                func(*args[:1], *unwrapped[1:], **kwargs)
            return args[0]
        if not on_away:
            return out
        with torch.inference_mode(False):  # a view's wrapper takes its base's version counter
            return tree_map(lambda t: Away(t) if isinstance(t, torch.Tensor) else t, out)


@pytest.fixture
def on_away(monkeypatch):
    """Within: AWAY is a device with its own generators, and every operation is device-checked."""
    monkeypatch.setattr(torch, "Generator", AwayGenerator)
    with CheckCalls(), CheckDevices():
        yield


def away_config(tmp_path, model_type, tiny_file, model):
    cfg = quick_config(tmp_path, model_type, tiny_file)
    cfg.model = model.config  # the small model's own options, saved with its checkpoint
    cfg.train = replace(cfg.train, max_steps=2, eval_interval=2, eval_samples=2, dtype="float32")
    return cfg


@pytest.mark.parametrize("model_type", sorted(MODELS))
def test_every_model_trains_evaluates_samples_and_resumes_on_a_device(model_type, tiny_file, tiny_data, tmp_path,
                                                                      on_away):
    work = tmp_path / "run"
    work.mkdir()
    data = tiny_data.to(AWAY)
    model = small_model(model_type, data.vocab.size, data.max_item_length).to(AWAY)
    cfg = away_config(tmp_path, model_type, tiny_file, model)
    assert model.device == AWAY and data.train.x.device == AWAY
    result = train(model, data, cfg, work, progress=False, write=lambda m: None)  # steps, evaluation, samples
    assert result.step == (2 if model.trainable else 0)
    state = checkpoint.load(work / "last.pt")  # saved on the host, read back onto the device
    cfg2, data2, model2 = checkpoint.restore(state, AWAY)
    cfg2.train = replace(cfg2.train, max_steps=4)
    train(model2, data2.to(AWAY), cfg2, work, state, progress=False, write=lambda m: None)
    losses = evaluate(model2, data2.to(AWAY), splits=("dev",))
    assert torch.isfinite(torch.tensor(losses["dev"]["nll"]))
    words = generate_tagged(model2, data2.to(AWAY), 5, torch.Generator(device=AWAY).manual_seed(0), top_k=3)
    assert len(words) == 5


def one_of_each_kind() -> list[str]:
    """The first registered count, window and sequence model: the checks' and lr-finder's code is the same for
    every model of a kind (each model's own code runs on the device in the test above)."""
    picks: dict[str, str] = {}
    for name, cls in MODELS.items():
        picks.setdefault("count" if not cls.trainable else "sequence" if issubclass(cls, SequenceModel) else "window",
                         name)
    return sorted(picks.values())


@pytest.mark.parametrize("model_type", one_of_each_kind())
def test_checks_and_the_lr_finder_on_a_device(model_type, tiny_data, on_away):
    data = tiny_data.to(AWAY)
    model = small_model(model_type, data.vocab.size, data.max_item_length).to(AWAY)
    train_cfg = quick_config_train()
    results = checks.run_checks(model, data, train_cfg, overfit_steps=10)  # too few steps to overfit: no matter
    assert results and not [r for r in results if r.detail.startswith("raised")], results
    if model.trainable:
        batches = Batches(data.train, model, 16, 0)
        lrs, losses = lrfind.sweep_rates(model, batches, make_optimizer(model, train_cfg), [1e-3, 1e-2, 1e-1],
                                         progress=False)
        assert len(losses) == 3


def quick_config_train():
    from makemore.runs import build_config

    return build_config(overrides={"train.dtype": "float32"}).train


def test_the_pretend_device_catches_a_tensor_made_on_the_host(tiny_data, on_away, monkeypatch):
    """The check above is real: a forgotten device= anywhere on the path fails it."""
    import makemore.data as D

    real_arange = torch.arange
    monkeypatch.setattr(D.torch, "arange", lambda *a, **k: real_arange(*a, **{**k, "device": CPU}))
    data = tiny_data.to(AWAY)
    with pytest.raises(WrongDevice, match="host tensor"):
        data.train.windows(3).get(torch.arange(4, device=AWAY))


# ---------------------------------------------------------------- --device auto and --dtype

@pytest.mark.parametrize("cuda,mps,expected", [(True, True, "cuda"), (False, True, "mps"), (False, False, "cpu")])
def test_auto_picks_cuda_then_mps_then_cpu(cuda, mps, expected, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
    assert resolve_device("auto") == torch.device(expected)
    assert resolve_device("cpu") == CPU


@pytest.mark.parametrize("bf16", [True, False])
def test_bfloat16_autocast_on_cuda_where_supported_and_float32_elsewhere(bf16, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: bf16)
    cuda = torch.device("cuda")
    assert autocast_dtype(cuda, "auto") == (torch.bfloat16 if bf16 else None)
    assert autocast_dtype(cuda, "float32") is None and autocast_dtype(CPU, "auto") is None
    assert autocast_dtype(torch.device("mps"), "auto") is None
    with pytest.raises(ConfigError, match="--dtype bfloat16 needs a CUDA GPU that supports it.*this run is on cpu"):
        autocast_dtype(CPU, "bfloat16")
    if bf16:
        assert autocast_dtype(cuda, "bfloat16") == torch.bfloat16
    else:
        with pytest.raises(ConfigError, match="bfloat16 needs a CUDA GPU that supports it"):
            autocast_dtype(cuda, "bfloat16")


def test_the_training_step_runs_in_the_autocast_precision_and_keeps_float32_weights(tiny_file, tiny_data, tmp_path,
                                                                                    monkeypatch):
    import makemore.device as D

    monkeypatch.setattr(D, "autocast_dtype", lambda device, dtype: torch.bfloat16)  # as on a bf16 GPU
    cfg = quick_config(tmp_path, "mlp", tiny_file, **{"train.max_steps": 4, "train.eval_interval": 4})
    (tmp_path / "run").mkdir()
    model = small_model("mlp", tiny_data.vocab.size, tiny_data.max_item_length)
    seen = []
    model.head.register_forward_hook(lambda m, args, out: seen.append((m.training, out.dtype)))
    result = train(model, tiny_data, cfg, tmp_path / "run", progress=False, write=lambda m: None)
    assert {dtype for training, dtype in seen if training} == {torch.bfloat16}  # every training step
    assert {dtype for training, dtype in seen if not training} == {torch.float32}  # evaluation and samples
    assert all(p.dtype == torch.float32 for p in model.parameters()) and result.best_dev_loss < 4


def test_the_cli_prints_the_device_and_saves_auto(tmp_path, tiny_file, capsys):
    work = tmp_path / "run"
    assert main(["-i", str(tiny_file), "-o", str(work), "--max-steps", "5", "--n-embd2", "8", "--no-progress"]) == 0
    assert "device: cpu\n" in capsys.readouterr().out
    assert "device: auto" in (work / "config.yaml").read_text() and "dtype: auto" in (work / "config.yaml").read_text()


# ---------------------------------------------------------------- checkpoints across devices

def as_if_saved_on_a_gpu(path) -> None:
    """Rewrite a checkpoint as a GPU run saves it: its tensors stored on cuda:0 (the optimizer's state is, on a
    GPU), and the random states of a CUDA batch generator (16 bytes: seed and offset) and of the GPU."""
    state = torch.load(path, weights_only=True)
    state["rng"].update(device="cuda", batches=torch.zeros(16, dtype=torch.uint8),
                        cuda=torch.zeros(16, dtype=torch.uint8))
    buffer = io.BytesIO()
    torch.save(state, buffer)
    original, out = zipfile.ZipFile(io.BytesIO(buffer.getvalue())), io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as rewritten:
        for info in original.infolist():
            body = original.read(info)
            if info.filename.endswith("data.pkl"):  # the storages' location tag, a pickled string
                assert b"X\x03\x00\x00\x00cpu" in body
                body = body.replace(b"X\x03\x00\x00\x00cpu", b"X\x06\x00\x00\x00cuda:0")
            rewritten.writestr(info.filename, body)
    path.write_bytes(out.getvalue())


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks loading a GPU checkpoint on a machine without one")
def test_a_checkpoint_saved_on_a_gpu_samples_evaluates_and_resumes_on_a_cpu(tmp_path, tiny_file, capsys):
    work = tmp_path / "run"
    assert main(["-i", str(tiny_file), "-o", str(work), "--max-steps", "10", "--n-embd2", "8", "--no-progress"]) == 0
    for name in ("model.pt", "last.pt"):
        as_if_saved_on_a_gpu(work / name)
    with pytest.raises(RuntimeError, match="CUDA"):  # the file really holds GPU tensors
        torch.load(work / "last.pt", weights_only=True)
    assert checkpoint.load(work / "last.pt")["config"]["train"]["device"] == "auto"  # only tensors were moved
    capsys.readouterr()
    assert main(["sample", "-o", str(work), "-n", "3", "--plain"]) == 0
    assert len(capsys.readouterr().out.split()) == 3
    assert main(["eval", "-o", str(work), "--checkpoint", "last.pt", "--json"]) == 0
    assert '"dev"' in capsys.readouterr().out
    assert main(["--resume", "-o", str(work), "--max-steps", "15", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "trained on cuda and continues on cpu" in out and checkpoint.load(work / "last.pt")["step"] == 15
    assert checkpoint.load(work / "last.pt")["rng"]["device"] == "cpu"


def test_a_device_this_machine_lacks_is_one_line(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    with pytest.raises(ConfigError, match="'cuda:3' is not available: this machine has 1 CUDA device"):
        resolve_device("cuda:3")
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="'mps' is not available on this machine; use --device cpu"):
        resolve_device("mps")
    with pytest.raises(ConfigError, match="'meta' is not supported: use auto, cpu, cuda, cuda:N or mps"):
        resolve_device("meta")
