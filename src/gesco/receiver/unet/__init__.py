"""The GESCO/SDM diffusion UNet (image-only encoder, SPADE-conditioned middle and decoder)."""

from gesco.receiver.unet.config import PRESET_NAMES, UNetConfig
from gesco.receiver.unet.model import GescoUNet, StateDictMismatchError, check_state_dict

__all__ = ["PRESET_NAMES", "GescoUNet", "StateDictMismatchError", "UNetConfig", "check_state_dict"]
