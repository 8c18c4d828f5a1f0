"""Every error message of the library, generated in one place.

Both frameworks call these functions, so the text of a ``ValueError`` is identical in torch and
Keras. Messages name the loss, the argument, the offending value and what was expected.
Argument names are framework-neutral: ``prediction`` (torch ``input``, Keras ``y_pred``) and
``target`` (torch ``target``, Keras ``y_true``).
"""
from __future__ import annotations

import numpy as np

VALIDATE_HINT = " (pass validate=False to skip data checks)"


def format_value(value) -> str:
    """A framework-independent rendering of a parameter value (arrays as lists of floats)."""
    if isinstance(value, (bool, np.bool_)):
        return repr(bool(value))
    if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        return repr(float(value)) if isinstance(value, (float, np.floating)) else repr(int(value))
    if isinstance(value, (str, type(None))):
        return repr(value)
    try:
        arr = np.asarray(value)
    except Exception:  # pragma: no cover - exotic objects
        return repr(value)
    if arr.dtype.kind in "biuf" and arr.ndim >= 1:
        return repr([float(v) for v in arr.reshape(-1)]) if arr.ndim == 1 else f"array of shape {arr.shape}"
    if arr.dtype.kind in "biuf" and arr.ndim == 0:
        return format_value(arr.item())
    return repr(value)


def format_shape(shape) -> str:
    dims = ["None" if d is None else str(int(d)) for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def unknown_param(loss: str, key: str, known: tuple[str, ...]) -> str:
    expected = ", ".join(known + ("reduction", "validate"))
    return f"{loss}: unknown parameter `{key}`; expected one of: {expected}"


def invalid_param(loss: str, name: str, value, domain: str) -> str:
    return f"{loss}: invalid `{name}`={format_value(value)}; expected {domain}"


def batch_reduction(loss: str, reduction) -> str:
    return (f"{loss}: invalid `reduction`={format_value(reduction)}; expected 'mean' (this "
            f"configuration gives one value per batch, so 'sum' and 'none' are undefined)")


def target_shape(loss: str, expected, got) -> str:
    return (f"{loss}: target must have shape {format_shape(expected)} for this prediction; "
            f"got {format_shape(got)}")


def no_batch_axis(loss: str, shape) -> str:
    return f"{loss}: prediction must have a batch axis (ndim >= 1); got shape {format_shape(shape)}"


def shape_mismatch(loss: str, prediction_shape, target_shape) -> str:
    return (f"{loss}: prediction and target must have the same shape; got prediction "
            f"{format_shape(prediction_shape)} and target {format_shape(target_shape)}")


def sample_weight_shape(loss: str, shape, batch) -> str:
    return (f"{loss}: sample_weight must have shape ({batch},) (one weight per sample); "
            f"got {format_shape(shape)}")


def param_shape(loss: str, name: str, size: int, axis_size: int) -> str:
    return (f"{loss}: `{name}` has {size} entries but the last axis of prediction has {axis_size}; "
            f"expected a scalar or one entry per class")


def axis_not_in_shape(loss: str, axis: int, shape) -> str:
    """``axis`` names no non-batch axis of the prediction (a loss along an axis of each sample's vectors)."""
    ndim = len(shape)
    expected = (f"1 <= axis <= {ndim - 1} or {-ndim + 1} <= axis <= -1" if ndim >= 2 else
                "a prediction of shape (N, ..., D) with the vectors along `axis` (a 1-D prediction has no "
                "non-batch axis)")
    return (f"{loss}: `axis`={axis} is not a non-batch axis of a prediction of shape {format_shape(shape)}; "
            f"expected {expected}")


def not_finite(loss: str, arg: str) -> str:
    return f"{loss}: {arg} contains NaN or inf; expected finite values{VALIDATE_HINT}"


def out_of_domain(loss: str, arg: str, lo: float, hi: float, vmin: float, vmax: float, hint: str = "") -> str:
    interval = f"[{_num(lo)}, {_num(hi)}]"
    return (f"{loss}: {arg} must lie in {interval}; got values in [{_num(vmin)}, {_num(vmax)}]"
            f"{hint}{VALIDATE_HINT}")


def negative_weight(loss: str, vmin: float) -> str:
    return f"{loss}: sample_weight must be >= 0; got minimum {_num(vmin)}{VALIDATE_HINT}"


def unknown_loss(name, registered, failed_plugins=None) -> str:
    """``get_loss`` / ``spec.get`` of a name no entry has (a ``KeyError`` in both frameworks)."""
    hint = (f"; plugins that failed to load: {'; '.join(f'{k} ({v})' for k, v in failed_plugins.items())}"
            if failed_plugins else "")
    return f"unknown loss {name!r}; registered: {', '.join(registered)}{hint}"


def auto_unavailable(key: str, available) -> str:
    """A loss parameter given as ``"auto"`` that is not computed from the training labels."""
    return f"loss parameter {key!r}: 'auto' is only available for {sorted(available)}"


def auto_needs_labels(key: str) -> str:
    """An ``"auto"`` parameter without the training labels to compute it from."""
    return (f"loss parameter {key}='auto' needs the training labels: pass `train_targets` (torch: a "
            f"datamodule with a `train_targets` attribute, e.g. ArrayDataModule; Keras: "
            f"tf_impl.training.build_loss(..., train_targets=y))")


def _num(x: float) -> str:
    x = float(x)
    if x == float("inf"):
        return "inf"
    if x == float("-inf"):
        return "-inf"
    return f"{x:.6g}"


# ---------------------------------------------------------------- porting (spec.ports)
def port_no_twin(qualified_class: str, reason: str) -> str:
    """A framework loss class without a twin in the catalog (``from_keras`` / ``from_torch``)."""
    return f"cannot port {qualified_class}: no twin in the catalog ({reason})"


def port_unsupported(qualified_class: str, setting: str, reason: str) -> str:
    """A framework loss configuration the twin cannot reproduce."""
    return f"cannot port {qualified_class} with {setting}: {reason}"


def port_unknown(obj: str, framework: str, expected: str) -> str:
    """Something that is not a loss of ``framework`` we can read."""
    return f"cannot port {obj}: not a {framework} loss; expected {expected}"


def port_axes(qualified_class: str, axes, shape) -> str:
    """A ported loss whose framework object reduced ``axes`` per sample, called on a prediction whose
    non-batch axes are others."""
    return (f"{qualified_class} with axis={tuple(axes)!r} reduces those axes per sample; the twin reduces every "
            f"non-batch axis, and this prediction has shape {format_shape(shape)}")


def port_pooled_weights(qualified_class: str) -> str:
    """``sample_weight`` given to the twin of a loss that pools the whole batch into one value."""
    return (f"{qualified_class} with axis=None pools the whole batch into one value: sample_weight has no "
            "sample to weight")
