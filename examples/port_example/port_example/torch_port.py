"""The PyTorch port of :func:`port_example.keras_loss.soft_count_mse` (torch argument order).

    loss_i = mean_j (target_ij - input_ij)^2 + FACTOR * mean_j sigmoid((input_ij - THRESHOLD) / TEMPERATURE)

Like the Keras original it returns one value per sample (a training loop takes ``.mean()``, as
Keras' default reduction does) and computes in the prediction's dtype.
"""
import torch

from port_example.keras_loss import FACTOR, TEMPERATURE, THRESHOLD


def loss(input, target):
    target = target.to(input.dtype)
    mse = torch.square(target - input).mean(dim=-1)
    soft_count = torch.sigmoid((input - THRESHOLD) / TEMPERATURE).mean(dim=-1)
    return mse + FACTOR * soft_count
