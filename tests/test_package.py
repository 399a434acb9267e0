import importlib
import subprocess
import sys

import pytest

import gesco


def test_import_gesco_stays_light():
    code = "import sys, gesco; assert 'torch' not in sys.modules, 'import gesco pulled torch'"
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", [n for n in gesco.__all__ if n != "__version__"])
def test_every_export_is_the_defining_modules_object(name):
    exported = getattr(gesco, name)
    assert exported is getattr(importlib.import_module(gesco._EXPORTS[name]), name)


def test_unknown_attribute_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        gesco.Nope  # noqa: B018
