"""Two plausible but wrong ports of :func:`port_example.keras_loss.soft_count_mse`; the port
check catches both (``python -m parity_tests.port ... --torch port_example.broken_ports:...``)."""
import torch

from port_example.keras_loss import FACTOR, TEMPERATURE, THRESHOLD


def swapped_arguments(input, target):
    """Reads Keras' ``(y_true, y_pred)`` as ``(input, target)``: the soft count penalizes the
    target's large values instead of the prediction's (and has no gradient)."""
    mse = torch.square(target - input).mean(dim=-1)
    soft_count = torch.sigmoid((target - THRESHOLD) / TEMPERATURE).mean(dim=-1)
    return mse + FACTOR * soft_count


def missing_penalty(input, target):
    """Forgets the soft-count term: only the squared error."""
    return torch.square(target.to(input.dtype) - input).mean(dim=-1)
