"""``LossParityCLI``: ``LightningCLI`` for :class:`LossModule` + :class:`ArrayDataModule`.

    python -m lossparity.lightning_cli fit --config lossparity/configs/multilabel.yaml [--out DIR]
    python -m lossparity.lightning_cli test --config lossparity/configs/multilabel.yaml --ckpt_path DIR/…/last.ckpt

Everything is in the YAML config (``model``: the network by ``class_path``, the loss, metrics and
optimizer; ``data``: the scenario's data function by import path; ``trainer``; ``seed_everything``).
Every ``LossModule`` argument is a flag: ``--model.compile_loss true`` trains through
``torch.compile`` of the loss (its compile seconds logged as ``loss_compile_s``), and
``--model.loss_params null --model.loss '{class_path: torch.nn.BCEWithLogitsLoss}'`` trains with a
loss object instead of a registered name (kept as config, rebuilt by ``test --ckpt_path``).
``--out DIR`` moves every file the run writes (``trainer.default_root_dir``, the CSV logs, the
checkpoints, the saved ``config.yaml``) under ``DIR``; without it they go where the config says
(``build/lightning_cli/<scenario>`` in the committed configs), never to the working directory's
``lightning_logs``. ``--threads N`` sets torch's CPU threads (default 1). Needs ``jsonargparse[signatures]`` (Lightning's CLI dependency).
"""
from __future__ import annotations

from typing import Any

from lightning.pytorch.cli import LightningCLI

from .datamodules import ArrayDataModule
from .modules import LossModule

DEFAULT_ROOT = "build/lightning_cli"


class LossParityCLI(LightningCLI):
    """``LightningCLI(LossModule, ArrayDataModule)`` with ``--out`` and a CSV logger by default."""

    def __init__(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})
        kwargs.setdefault("trainer_defaults", {
            "default_root_dir": DEFAULT_ROOT,
            "logger": {"class_path": "lightning.pytorch.loggers.CSVLogger",
                       "init_args": {"save_dir": DEFAULT_ROOT, "name": "logs"}},
        })
        super().__init__(LossModule, ArrayDataModule, *args, **kwargs)

    def add_arguments_to_parser(self, parser) -> None:
        parser.add_argument("--out", type=str | None, default=None,
                            help="run folder: trainer.default_root_dir and the CSV logger's save_dir")
        parser.add_argument("--threads", type=int, default=1,
                            help="torch CPU threads (default 1: the scenarios' networks are small, and "
                                 "more threads on busy cores are much slower; 0 = torch's default)")

    def before_instantiate_classes(self) -> None:
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.get("threads"):
            import torch

            torch.set_num_threads(int(config.threads))
        out = config.get("out")
        if not out:
            return
        config.trainer.default_root_dir = out
        logger = config.trainer.get("logger")
        if logger is not None and not isinstance(logger, bool):
            for one in logger if isinstance(logger, list) else [logger]:
                init_args = one.get("init_args") if hasattr(one, "get") else None
                if init_args is not None and "save_dir" in init_args:
                    init_args.save_dir = out


def main(args=None) -> LossParityCLI:
    return LossParityCLI(args=args)


__all__ = ["LossParityCLI", "main", "DEFAULT_ROOT"]
