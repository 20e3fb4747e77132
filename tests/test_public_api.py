"""The curated public API: every exported name resolves and is documented."""

import inspect
import subprocess
import sys

import pytest

import snnax_nas


@pytest.mark.parametrize("name", snnax_nas.__all__)
def test_every_public_name_resolves_and_has_a_docstring(name):
  value = getattr(snnax_nas, name)
  if inspect.ismodule(value) or inspect.isclass(value) or inspect.isfunction(value):
    assert inspect.getdoc(value), f"snnax_nas.{name} has no docstring"


def test_every_public_function_of_every_submodule_is_documented():
  missing = []
  for mod_name in snnax_nas._SUBMODULES:
    mod = getattr(snnax_nas, mod_name)
    for attr, value in vars(mod).items():
      if attr.startswith("_") or getattr(value, "__module__", None) != mod.__name__:
        continue
      if (inspect.isfunction(value) or inspect.isclass(value)) and not inspect.getdoc(value):
        missing.append(f"{mod.__name__}.{attr}")
  assert not missing, f"undocumented public names: {missing}"


def test_unknown_attribute_is_an_attribute_error():
  with pytest.raises(AttributeError, match="no_such_name"):
    snnax_nas.no_such_name  # noqa: B018


def test_import_is_lazy():
  # Importing the package must not pull in the training stack.
  code = ("import sys, snnax_nas; "
          "print(any(m.startswith(('orbax', 'optax', 'snnax_nas.train')) for m in sys.modules))")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert out.stdout.strip() == "False"
