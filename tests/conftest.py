"""Shared test set-up: small configs keep compile times low on 2 CPU cores."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
# Tests run tiny networks, where XLA's compile time dominates: skip most of its
# optimisation passes (as flax's examples do in tests). Set here, in the
# environment, so launcher subprocesses inherit it too. Numerics are
# unchanged up to float rounding, which every tolerance already allows.
os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(scope="module")
def random_npz(tmp_path_factory):
  """A ``.npz`` of 32 random uint8 images [16, 16, 3] with labels 0..9."""
  path = tmp_path_factory.mktemp("data") / "tiny.npz"
  rng = np.random.default_rng(0)
  np.savez(path, image=rng.integers(0, 255, (32, 16, 16, 3), dtype=np.uint8),
           label=rng.integers(0, 10, 32).astype(np.uint8))
  return str(path)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
  """Environment of launcher subprocesses: CPU, and a persistent compilation
  cache shared by them so that only the first one compiles."""
  return dict(os.environ, JAX_PLATFORMS="cpu",
              JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp("jax_cache")),
              JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
              JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")


@pytest.fixture
def free_port():
  """A free TCP port on 127.0.0.1 (a local jax.distributed coordinator)."""
  import socket
  with socket.socket() as sock:
    sock.bind(("127.0.0.1", 0))
    return sock.getsockname()[1]
