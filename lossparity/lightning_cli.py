"""The Lightning CLI of the scenarios.

    python -m lossparity.lightning_cli fit --config lossparity/configs/SCENARIO.yaml [--out DIR]
    python -m lossparity.lightning_cli fit --config lossparity/configs/multilabel.yaml \\
        --model.loss_params '{pos_weight: auto}' --trainer.max_epochs 3
    python -m lossparity.lightning_cli test --config lossparity/configs/digits.yaml --ckpt_path DIR/logs/version_0/checkpoints/last.ckpt

    lossparity fit --config multilabel [--out DIR]     # the console command: a packaged config by name

One committed config per scenario (``lossparity/configs/<name>.yaml``, shipped with the package): the
scenario's main job as a ``LossModule`` + ``ArrayDataModule``. ``lossparity fit`` finds a config by
its scenario name from any directory (:func:`lossparity.paths.config_path`); outputs go under the
current directory. See :mod:`torch_impl.lightning.cli`.
"""
from __future__ import annotations

import warnings


def main(args=None):
    # the data are in memory: DataLoader workers would only add start-up time
    warnings.filterwarnings("ignore", message=r".*does not have many workers.*")
    from torch_impl.lightning.cli import main as cli_main

    return cli_main(args)


if __name__ == "__main__":
    main()
