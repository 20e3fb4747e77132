"""Packages of named modules imported on first use: the jobs and the studies."""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Callable


def module_registry(package: str, names: tuple[str, ...], kind: str, kinds: str
                    ) -> tuple[Callable[[str], ModuleType], Callable[[str], ModuleType]]:
  """``(get, __getattr__)`` for ``package``, whose submodules are ``names``.

  ``get(name)`` imports ``package.name`` (a ``ValueError`` naming the bad
  value and listing ``names`` for any other); the module-level
  ``__getattr__`` (PEP 562) lets ``package.name`` work without an explicit
  import of the submodule.

  Args:
    package: the package's ``__name__``.
    names: its submodules.
    kind, kinds: what one and several are called in messages ("job", "jobs").
  """

  def get(name: str) -> ModuleType:
    """The module of ``name`` (its ``run(config, workdir)`` and ``report``).

    Raises:
      ValueError: an unknown name (the message lists the known ones).
    """
    if name not in names:
      raise ValueError(f"unknown {kind} {name!r}; {kinds}: {', '.join(names)}")
    return importlib.import_module(f"{package}.{name}")

  def getattr_(name: str) -> ModuleType:
    if name in names:
      return get(name)
    raise AttributeError(f"module {package!r} has no attribute {name!r}")

  return get, getattr_
