"""Test-wide setup: Keras runs on its JAX backend, never looking for tensorflow."""

import os

# Must be set before anything imports keras.
os.environ.setdefault("KERAS_BACKEND", "jax")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# The recording script needs tensorflow, which the suite never installs.
collect_ignore = ["data"]
