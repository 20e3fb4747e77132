"""Shared test set-up: small configs keep compile times low on 2 CPU cores."""

import os

os.environ.setdefault("JAX_PLATFORMS", "cpu")
