"""``LossModule`` with a loss object instead of a registered name, and with ``compile_loss``.

Tolerances: a loss object computing the same math as ours (``nn.BCEWithLogitsLoss(pos_weight)``
against ``weighted_bce``; ours compiled against ours eager) differs in float32 rounding only: a
loss value is a mean over ≤ 16 x 30 elements, so the two agree to a few float32 ulps of the
mean (rtol 1e-5). Adam moves each weight by at most ~lr (1e-3) a step whatever the gradient's
size, so rounding differences in the gradients move the weights by a small fraction of that over
the 8 steps here (atol 1e-5 = 1% of one step; a wrong loss, say pos_weight 1 instead of 3, is off
by ~1e-3 after the first step).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

LOSS_RTOL = 1e-5
WEIGHT_ATOL = 1e-5
POS_WEIGHT = 3.0


def _arrays():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(80, 30)).astype(np.float32)
    y = (rng.random((80, 30)) < 0.2).astype(np.float32)
    return {"x_train": x[:64], "y_train": y[:64], "x_test": x[64:], "y_test": y[64:]}


def _module(tl, torch, loss="weighted_bce", seed=0, **kw):
    torch.manual_seed(seed)
    params = {"loss_params": {"pos_weight": POS_WEIGHT}} if loss == "weighted_bce" else {}
    return tl.LossModule(tl.MLP(30, [16], 30), loss=loss, optimizer={"name": "adam", "lr": 1e-3}, **params, **kw)


def _bce_object(torch, pos_weight=POS_WEIGHT):
    return torch.nn.BCEWithLogitsLoss(pos_weight=torch.full((30,), pos_weight))


def _fit(L, tl, module, root, epochs=2, callbacks=(), ckpt_path=None, **kw):
    losses = []

    class Record(L.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            losses.append(float(outputs["loss"]))

    trainer = L.Trainer(max_epochs=epochs, default_root_dir=str(root), logger=kw.pop("logger", False),
                        enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0,
                        limit_val_batches=0, deterministic=True, accelerator="cpu", devices=1,
                        callbacks=[Record(), *callbacks], **kw)
    trainer.fit(module, datamodule=tl.ArrayDataModule(arrays=_arrays(), batch_size=16, seed=1), ckpt_path=ckpt_path)
    return trainer, np.array(losses)


def _weights(module):
    return {k: v.detach().numpy().copy() for k, v in module.net.state_dict().items()}


def _assert_same_training(a, b, losses_a, losses_b):
    assert len(losses_a) == len(losses_b) == 8
    np.testing.assert_allclose(losses_b, losses_a, rtol=LOSS_RTOL)
    wa, wb = _weights(a), _weights(b)
    for key in wa:
        np.testing.assert_allclose(wb[key], wa[key], rtol=0, atol=WEIGHT_ATOL, err_msg=key)


def test_a_loss_object_trains_as_the_registered_loss(tmp_path, lightning_env):
    """nn.BCEWithLogitsLoss(pos_weight) through LossModule: the same steps as weighted_bce(pos_weight),
    and a plain function is accepted too; the check can fail (another pos_weight is far off)."""
    torch, L, tl = lightning_env
    ours = _module(tl, torch)
    _, ours_losses = _fit(L, tl, ours, tmp_path / "a")
    peer = _module(tl, torch, loss=_bce_object(torch))
    _, peer_losses = _fit(L, tl, peer, tmp_path / "b")
    assert isinstance(peer.loss_fn, torch.nn.BCEWithLogitsLoss) and "loss_fn.pos_weight" in peer.state_dict()
    _assert_same_training(ours, peer, ours_losses, peer_losses)

    def bce(input, target):  # a function of one's own
        return torch.nn.functional.binary_cross_entropy_with_logits(input, target,
                                                                    pos_weight=torch.tensor(POS_WEIGHT))
    fn = _module(tl, torch, loss=bce)
    _, fn_losses = _fit(L, tl, fn, tmp_path / "c")
    _assert_same_training(ours, fn, ours_losses, fn_losses)

    other = _module(tl, torch, loss=_bce_object(torch, pos_weight=1.0))
    _, other_losses = _fit(L, tl, other, tmp_path / "d")
    assert not np.allclose(other_losses, ours_losses, rtol=LOSS_RTOL)


def test_a_loss_object_is_passed_again_at_load_and_resumes(tmp_path, lightning_env):
    """The checkpoint records the object's class (hyperparameters) and its state (state_dict): loading
    without it names the class; with it, the trained state replaces the object's; a resumed fit
    ends bit-identical to a straight one."""
    torch, L, tl = lightning_env
    from lightning.pytorch.callbacks import ModelCheckpoint

    straight = _module(tl, torch, loss=_bce_object(torch))
    ckpt = ModelCheckpoint(dirpath=tmp_path / "ckpt", filename="{epoch}", save_top_k=-1)
    _fit(L, tl, straight, tmp_path / "a", callbacks=[ckpt])
    first_epoch = str(tmp_path / "ckpt" / "epoch=0.ckpt")
    hparams = torch.load(first_epoch, weights_only=False)["hyper_parameters"]
    assert hparams["loss"] == "object:torch.nn.modules.loss.BCEWithLogitsLoss"

    with pytest.raises(ValueError, match="trained with the loss object torch.nn.modules.loss.BCEWithLogitsLoss.*"
                                         "pass it again"):
        tl.LossModule.load_from_checkpoint(first_epoch, net=tl.MLP(30, [16], 30))
    loaded = tl.LossModule.load_from_checkpoint(first_epoch, net=tl.MLP(30, [16], 30),
                                                loss=_bce_object(torch, pos_weight=7.0))
    assert torch.equal(loaded.loss_fn.pos_weight, torch.full((30,), POS_WEIGHT))  # the checkpoint's state

    resumed = _module(tl, torch, loss=_bce_object(torch), seed=5)
    _, resumed_losses = _fit(L, tl, resumed, tmp_path / "b", ckpt_path=first_epoch)
    assert len(resumed_losses) == 4  # the second epoch only
    a, b = straight.state_dict(), resumed.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_loss_argument_errors(lightning_env):
    torch, L, tl = lightning_env
    net = tl.MLP(30, [16], 30)
    with pytest.raises(ValueError, match="loss_params \\['pos_weight'\\] apply to a registered loss name only"):
        tl.LossModule(net, loss=torch.nn.BCEWithLogitsLoss(), loss_params={"pos_weight": 2.0})
    with pytest.raises(ValueError, match="registered loss name or a callable"):
        tl.LossModule(net, loss=3.0)
    with pytest.raises(ValueError, match="compile_options are given but compile_loss is False"):
        tl.LossModule(net, compile_options={"backend": "aot_eager"})


def _compiled_against_eager(tmp_path, L, tl, torch, compile_options):
    from lightning.pytorch.loggers import CSVLogger

    eager = _module(tl, torch)
    _, eager_losses = _fit(L, tl, eager, tmp_path / "eager")
    torch._dynamo.reset()  # a cold compilation, whatever ran before in this process
    compiled = _module(tl, torch, compile_loss=True, compile_options=compile_options)
    trainer, compiled_losses = _fit(L, tl, compiled, tmp_path / "compiled", logger=CSVLogger(tmp_path),
                                    log_every_n_steps=1)
    _assert_same_training(eager, compiled, eager_losses, compiled_losses)
    assert compiled.loss_compile_s > 0
    assert float(trainer.callback_metrics["loss_compile_s"]) == pytest.approx(compiled.loss_compile_s)
    import csv

    rows = list(csv.DictReader(open(next(tmp_path.rglob("metrics.csv")))))
    logged = [float(r["loss_compile_s"]) for r in rows if r.get("loss_compile_s")]
    assert logged == [pytest.approx(compiled.loss_compile_s)]  # once, in the first epoch's row
    assert "_compiled_loss" not in dict(compiled.named_children())
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    return compiled


def test_compile_loss_gives_the_eager_losses(tmp_path, lightning_env):
    """compile_loss=True with the aot_eager backend (the graph capture and the compiled
    autograd path without inductor's code generation: seconds): same steps as eager."""
    torch, L, tl = lightning_env
    _compiled_against_eager(tmp_path, L, tl, torch, {"backend": "aot_eager"})


@pytest.mark.slow
def test_compile_loss_inductor_gives_the_eager_losses(tmp_path, lightning_env):
    """The default compiler (inductor: fused C++ loops on CPU), as ``--model.compile_loss true``
    gives it: same steps as eager; its compilation takes 10-20 s on a loaded 2-core machine."""
    torch, L, tl = lightning_env
    _compiled_against_eager(tmp_path, L, tl, torch, None)


def test_cli_switches(lightning_env, tmp_path):
    """--model.compile_loss true (with compile_options) and a loss object given by class_path on the
    Lightning CLI reach LossModule."""
    torch, L, tl = lightning_env
    from torch_impl.lightning.cli import LossParityCLI

    import lossparity

    config = str(Path(lossparity.__file__).parent / "configs" / "multilabel.yaml")
    cli = LossParityCLI(args=["--config", config, "--out", str(tmp_path), "--model.compile_loss", "true",
                              "--model.compile_options", "{backend: aot_eager}"], run=False)
    assert cli.model.compile_loss and cli.model.compile_options == {"backend": "aot_eager"}
    cli = LossParityCLI(args=["--config", config, "--out", str(tmp_path), "--model.loss_params", "null",
                              "--model.loss", "{class_path: torch.nn.BCEWithLogitsLoss, init_args: {reduction: sum}}"],
                        run=False)
    assert isinstance(cli.model.loss_fn, torch.nn.BCEWithLogitsLoss) and cli.model.loss_fn.reduction == "sum"
    assert cli.model.hparams["loss"]["class_path"] == "torch.nn.BCEWithLogitsLoss"  # rebuilt by the CLI at load


def test_a_loss_object_gets_the_batch_weights(tmp_path, lightning_env):
    """(x, y, w) batches call the object with sample_weight=w, the rows' own weights; an object
    weighting as ours does trains as weighted_bce with the same sample weights."""
    torch, L, tl = lightning_env
    arrays = {**_arrays(), "w_train": np.linspace(0.5, 2.0, 64).astype(np.float32)}
    seen = []

    def weighted_bce(input, target, sample_weight):
        seen.append(sample_weight.detach().clone())
        per_sample = torch.nn.functional.binary_cross_entropy_with_logits(
            input, target, pos_weight=torch.tensor(POS_WEIGHT), reduction="none").mean(1)
        return (per_sample * sample_weight).mean()

    def fit(module):
        losses = []

        class Record(L.Callback):
            def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
                losses.append(float(outputs["loss"]))

        L.Trainer(max_epochs=1, default_root_dir=str(tmp_path), logger=False, enable_progress_bar=False,
                  enable_model_summary=False, limit_val_batches=0, deterministic=True, accelerator="cpu",
                  devices=1, callbacks=[Record()]).fit(
            module, datamodule=tl.ArrayDataModule(arrays=arrays, batch_size=16, seed=1))
        return np.array(losses)

    ours = fit(_module(tl, torch))
    objects = fit(_module(tl, torch, loss=weighted_bce))
    assert len(seen) == 4 and sorted(torch.cat(seen).tolist()) == pytest.approx(sorted(arrays["w_train"].tolist()))
    np.testing.assert_allclose(objects, ours, rtol=LOSS_RTOL)
