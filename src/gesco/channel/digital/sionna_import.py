"""Import NVIDIA Sionna lazily: it takes seconds to load and is an optional extra.

Importing ``sionna.phy`` re-seeds torch's global random generator (its config seeds
``torch.default_generator`` at import), which would silently break ``torch.manual_seed``
reproducibility of everything else in the process; the loader restores the state.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import torch

INSTALL_HINT = (
    "gesco's digital link needs NVIDIA Sionna (PyTorch, 2.x): install the extra with "
    "`pip install 'gesco[digital]'` (or `pip install sionna-no-rt`, after the CPU build of torch)"
)


def import_sionna(*subpackages: str) -> ModuleType:
    """Return ``sionna.phy`` with its ``fec`` and ``mapping`` subpackages loaded, and any further
    ``subpackages`` (full module names, e.g. ``"sionna.phy.ofdm"``).

    Raises:
        ImportError: Sionna is not installed; the message says how to install it.
    """
    state = torch.get_rng_state()
    try:
        phy = importlib.import_module("sionna.phy")
        for name in ("sionna.phy.fec.ldpc", "sionna.phy.fec.crc", "sionna.phy.mapping", *subpackages):
            importlib.import_module(name)
    except ImportError as err:
        raise ImportError(f"{INSTALL_HINT} ({err})") from err
    finally:
        torch.set_rng_state(state)
    return phy
