"""Our NumPy reference against an independent implementation: the PyTorch peer.

The peer (`torch_biaxial.py`, the benchmarks' baseline) is the same model written with
torch.nn.LSTM and autograd. It is not part of this project: these tests look for it at
$BIAXIAL_CU_PEER, `peers/torch_biaxial.py` (git-ignored) or `../shared/peers/torch_biaxial.py`,
and skip with that reason when it or torch is missing. CI (.ci/run) installs torch, has the
peer beside the checkout and sets BIAXIAL_CU_REQUIRE_PEER=1: there a missing peer or torch
fails these tests instead of skipping them.

The peer's cells use tanh (cuDNN has no identity cell), so the comparison uses
cell_activation="tanh", dropout 0, float64 on both sides. Both sides then do the same float64
arithmetic in a different order: here the loss agreed to 1e-16 relative and the gradients
(autograd against our manual BPTT) to 3e-15 of each tensor's largest entry; 1e-10 leaves room
for summation order across BLAS builds while still failing on any real difference in the model.
"""
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from biaxial_cu import Model
from biaxial_cu.data import load_pieces, sample_batch, shipped_corpus_dir

ROOT = Path(__file__).resolve().parents[1]


def peer_path():
    candidates = [os.environ.get("BIAXIAL_CU_PEER"), ROOT / "peers" / "torch_biaxial.py",
                  ROOT.parent / "shared" / "peers" / "torch_biaxial.py"]
    return next((Path(c) for c in candidates if c and Path(c).is_file()), None)


def skip_reason():
    if importlib.util.find_spec("torch") is None:
        return "torch is not installed (the peer needs it)"
    if peer_path() is None:
        return "the PyTorch peer torch_biaxial.py was not found ($BIAXIAL_CU_PEER, peers/, ../shared/peers/)"
    return None


REQUIRED = os.environ.get("BIAXIAL_CU_REQUIRE_PEER") == "1"  # set by .ci/run
pytestmark = pytest.mark.skipif(not REQUIRED and skip_reason() is not None, reason=str(skip_reason()))


@pytest.fixture(scope="module", autouse=True)
def peer_required():
    """With BIAXIAL_CU_REQUIRE_PEER=1 a missing peer or torch is a failure, not a skip."""
    if skip_reason() is not None:
        pytest.fail(f"BIAXIAL_CU_REQUIRE_PEER=1, but {skip_reason()}")


@pytest.fixture(scope="module")
def peer():
    spec = importlib.util.spec_from_file_location("torch_biaxial", peer_path())
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus():
    return load_pieces(shipped_corpus_dir())


def tanh_model(t_sizes, p_sizes, seed):
    return Model(t_sizes, p_sizes, dropout=0.0, cell_activation="tanh", dtype="float64",
                 backend="numpy", seed=seed)


@pytest.mark.parametrize("t_sizes,p_sizes", [pytest.param((300, 300), (100, 50), marks=pytest.mark.slow),
                                             ((20, 10), (8, 6, 4))])
def test_loss_equals_peer_loss(tmp_path, corpus, t_sizes, p_sizes):
    """The peer's own `loss` command on our parameters (API layout) and a corpus batch."""
    model = tanh_model(t_sizes, p_sizes, seed=1)
    batch = sample_batch(corpus, 3, 32, np.random.default_rng(2))  # (3, 32, 78, 2)
    np.savez(tmp_path / "params.npz", **{k: np.asarray(v) for k, v in model.params.items()})
    np.save(tmp_path / "batch.npy", batch)
    run = subprocess.run([sys.executable, str(peer_path()), "loss", "--params", str(tmp_path / "params.npz"),
                          "--batch-file", str(tmp_path / "batch.npy")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-2000:]
    peer_loss = json.loads(run.stdout.strip().splitlines()[-1])["loss"]
    ours = model.loss(batch)
    assert abs(ours - peer_loss) <= 1e-10 * abs(peer_loss), (ours, peer_loss)


def lstms_of(net):
    return [(f"time.{k}", m) for k, m in enumerate(net.time)] + [(f"pitch.{k}", m) for k, m in enumerate(net.pitch)]


def loaded_net(peer, model):
    """The peer's model (float64, no dropout) holding our parameters (API layout)."""
    import torch

    net = peer.Biaxial(model.t_layer_sizes, model.p_layer_sizes, dropout=0.0).double()
    params = {k: torch.from_numpy(np.asarray(v)) for k, v in model.params.items()}
    with torch.no_grad():
        for name, lstm in lstms_of(net):
            lstm.weight_ih_l0.copy_(params[f"{name}.W"][:, :lstm.input_size])
            lstm.weight_hh_l0.copy_(params[f"{name}.W"][:, lstm.input_size:])
            lstm.bias_ih_l0.copy_(params[f"{name}.b"])
        net.out.weight.copy_(params["out.W"])
        net.out.bias.copy_(params["out.b"])
    return net


def in_our_layout(net, grad=False):
    """The peer's parameters (or their gradients) under our names and shapes."""
    import torch

    get = (lambda p: p.grad) if grad else (lambda p: p.detach())  # noqa: E731
    out = {"out.W": get(net.out.weight), "out.b": get(net.out.bias)}
    for name, lstm in lstms_of(net):
        out[f"{name}.W"] = torch.cat([get(lstm.weight_ih_l0), get(lstm.weight_hh_l0)], dim=1)
        out[f"{name}.b"] = get(lstm.bias_ih_l0)  # bias_hh is frozen at zero in the peer
    return {k: v.numpy() for k, v in out.items()}


def peer_gradients(peer, model, batch):
    """Autograd gradients of the peer's model holding our parameters, in our layout."""
    import torch

    net = loaded_net(peer, model)
    loss = net(torch.from_numpy(batch.astype(np.float64)))
    loss.backward()
    return float(loss.detach()), in_our_layout(net, grad=True)


def test_gradients_equal_autograd(peer, corpus):
    """Manual BPTT on both axes against PyTorch autograd through cuDNN-layout LSTMs."""
    model = tanh_model((24, 16), (12, 8), seed=3)
    batch = sample_batch(corpus, 2, 20, np.random.default_rng(4))  # (2, 20, 78, 2)
    loss, grads = model.gradients(batch)
    peer_loss, expected = peer_gradients(peer, model, batch)
    assert abs(loss - peer_loss) <= 1e-10 * abs(peer_loss)
    assert set(grads) == set(expected)
    for name, g in expected.items():
        scale = np.abs(g).max()
        assert scale > 0, name  # a gradient that vanished would compare trivially
        np.testing.assert_allclose(grads[name], g, rtol=0, atol=1e-10 * scale, err_msg=name)


def test_benchmarks_call_the_peer_in_process():
    """bench/common.peer_result runs the peer's own bench functions (on the CPU here): the
    argument names match its command line and its JSON fields come back."""
    sys.path.insert(0, str(ROOT / "bench"))
    from common import load_peer, peer_result

    peer = load_peer(peer_path())
    train = peer_result(peer, "train", batch=1, seq_len=8, iters=2, mode="eager")
    assert train["task"] == "train" and len(train["times_ms"]) == 2 and train["peer"] == "pytorch-cudnn"
    generate = peer_result(peer, "generate", steps=2, pieces=1)
    assert generate["task"] == "generate" and generate["steps"] == 2
    # a call missing an argument is a failure of that call: recorded with the error, not raised
    missing = peer_result(peer, "train", batch=1)
    assert set(missing) == {"failed"}, missing
    assert missing["failed"].startswith("AttributeError") and "seq_len" in missing["failed"], missing


def test_adadelta_steps_equal_the_peers(peer, corpus):
    """Two training steps (gradients, clipping per gate block, Adadelta) against the peer's
    clip_per_gate_ and torch.optim.Adadelta, float64, no dropout. The summed loss of a real
    batch gives gradients far above norm 5, so the clipping is exercised."""
    import torch

    model = tanh_model((24, 16), (12, 8), seed=7)
    net = loaded_net(peer, model)
    opt = torch.optim.Adadelta([p for p in net.parameters() if p.requires_grad], lr=1.0, rho=0.95, eps=1e-6)
    for seed in (8, 9):
        batch = sample_batch(corpus, 2, 20, np.random.default_rng(seed))
        opt.zero_grad()
        loss = net(torch.from_numpy(batch.astype(np.float64)))
        loss.backward()
        clipped = any(np.linalg.norm(g) > 5 for g in in_our_layout(net, grad=True).values())
        peer.clip_per_gate_(net)
        opt.step()
        assert clipped
        assert model.train_step(batch) == pytest.approx(float(loss.detach()), rel=1e-10)
    for name, want in in_our_layout(net).items():
        np.testing.assert_allclose(model.params[name], want, rtol=1e-9, atol=1e-12, err_msg=name)
