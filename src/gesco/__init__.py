"""gesco: generative semantic communication.

Transmitter (semantic map -> payload) -> Channel (noisy map) -> Receiver (FDS + diffusion model -> image).
"""

__version__ = "0.1.0"
