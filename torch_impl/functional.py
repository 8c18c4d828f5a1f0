"""Functional losses, one name per spec entry: ``fn(input, target, *, ...)``."""
from .classification import binary_focal, weighted_bce
from .divergence import *  # noqa: F401,F403  (each family module lists its functions in __all__)
from .margin import *  # noqa: F401,F403
from .metric_learning import *  # noqa: F401,F403
from .multiclass import *  # noqa: F401,F403
from .overlap import *  # noqa: F401,F403
from .regression import *  # noqa: F401,F403
from .regularizers import *  # noqa: F401,F403
from .sequence import *  # noqa: F401,F403
