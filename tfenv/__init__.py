"""`ntr.tfenv`: TensorFlow with the environment ntr needs. Import it before anything imports TF.

Its own part (not inside retrieval/) because losses/, pipelines/, serving/ and retrieval/ all
need it and none of them should import another just for this.

TFRS 0.7.7 is written against Keras 2; TensorFlow 2.20 ships Keras 3 unless
`TF_USE_LEGACY_KERAS=1` is set *before TensorFlow is first imported*, after which `tf.keras`
is tf-keras (Keras 2). This is the one place ntr sets it: every TF-using module does
`from ntr.tfenv import tf` instead of `import tensorflow as tf`.
"""

import os

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
# TF's C++ start-up chatter (CUDA probes on CPU machines) hides real messages.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

if "tf_keras" not in tf.keras.__name__:
    raise RuntimeError(
        "ntr needs Keras 2 (tf-keras) behind tf.keras, but TensorFlow was imported with Keras 3. "
        "Set TF_USE_LEGACY_KERAS=1 in the environment, or import ntr before tensorflow."
    )

__all__ = ["tf"]
