"""Import TensorFlow without its start-up log lines.

TensorFlow 2.16+ writes ``WARNING: All log messages before absl::InitializeLog() …`` and the
oneDNN notice straight to file descriptor 2 while it loads its C++ libraries, before
``TF_CPP_MIN_LOG_LEVEL`` can take effect. ``import tf_impl`` loads TensorFlow with descriptor 2
pointed at a temporary file and shows that file only if the import fails. ``TF_CPP_MIN_LOG_LEVEL``
is respected: set it to ``0`` to see TensorFlow's start-up logs; when unset it defaults to ``2``
(warnings and errors of TensorFlow's own code stay hidden, as Keras users usually configure).
"""
from __future__ import annotations

import os
import sys
import tempfile


def import_tensorflow():
    """``import tensorflow`` (once), quietly unless ``TF_CPP_MIN_LOG_LEVEL=0``."""
    if "tensorflow" in sys.modules:
        return sys.modules["tensorflow"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0":
        import tensorflow

        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as log:
        os.dup2(log.fileno(), 2)
        try:
            import tensorflow
        except BaseException:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)
    return tensorflow
