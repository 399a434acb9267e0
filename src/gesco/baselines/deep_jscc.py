"""Deep JSCC (Bourtsoulatze, Kurka, Gunduz, "Deep Joint Source-Channel Coding for Wireless Image
Transmission", 2019): the image goes straight to channel symbols through a convolutional
autoencoder, trained through a differentiable channel.

The encoder follows the paper's five 5x5 convolutions with PReLU (two of them stride 2, so the
latent is H/4 x W/4), the decoder mirrors it with transposed convolutions and ends in a sigmoid.
Two additions, both small:

- the latent's ``latent_channels`` real values per position become complex symbols in pairs and
  are normalised per image to mean power 1 (E|s|^2 = 1, the average power constraint);
- the channel SNR (dB / 20) enters encoder and decoder as one constant input plane, so a single
  model serves every SNR it was trained at, in the spirit of the attention-based ADJSCC
  (Xu et al. 2021) but without its attention modules.

Channel uses per image = latent_channels / 2 x H/4 x W/4; the bandwidth ratio k/n of the paper
is that over the 3 H W real values of the image.
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import nn

from gesco.channel.digital.symbol_channel import SymbolChannel
from gesco.channel.digital.theory import esn0_db_to_n0
from gesco.config import Config
from gesco.weights_folder import WeightsFolder

#: The encoder halves the resolution twice.
DOWNSAMPLING = 4
#: SNR (dB) is fed to the network divided by this, so the training range sits near [-1, 1].
SNR_SCALE_DB = 20.0


@dataclasses.dataclass(frozen=True)
class DeepJSCCConfig(Config):
    """Attributes:
    image_size: (H, W), both multiples of 4.
    hidden_channels: channels of the four hidden convolutions (the paper: 16, 32, 32, 32).
    latent_channels: real values per latent position; even (pairs make complex symbols).
    train_snrs_db: the SNRs (Es/N0, dB) the model was trained at, drawn uniformly per image.
    """

    image_size: tuple[int, int] = (64, 128)
    hidden_channels: tuple[int, int, int, int] = (16, 32, 32, 32)
    latent_channels: int = 192
    train_snrs_db: tuple[float, ...] = (-5.0, 0.0, 5.0, 10.0, 15.0, 20.0)

    def __post_init__(self) -> None:
        height, width = self.image_size
        if height % DOWNSAMPLING or width % DOWNSAMPLING or height < DOWNSAMPLING or width < DOWNSAMPLING:
            raise ValueError(f"image_size={self.image_size} must be positive multiples of {DOWNSAMPLING}")
        if self.latent_channels < 2 or self.latent_channels % 2:
            raise ValueError(
                f"latent_channels={self.latent_channels} must be a positive even number "
                "(two real values make one complex channel use)"
            )
        if len(self.hidden_channels) != 4 or min(self.hidden_channels) < 1:
            raise ValueError(f"hidden_channels={self.hidden_channels} must be four positive channel counts")
        if not self.train_snrs_db or not all(math.isfinite(s) for s in self.train_snrs_db):
            raise ValueError(f"train_snrs_db={self.train_snrs_db} must be finite SNRs in dB")

    @property
    def channel_uses(self) -> int:
        """Complex channel uses per image."""
        height, width = self.image_size
        return self.latent_channels // 2 * (height // DOWNSAMPLING) * (width // DOWNSAMPLING)

    @property
    def channel_uses_per_pixel(self) -> float:
        return self.channel_uses / (self.image_size[0] * self.image_size[1])

    @property
    def bandwidth_ratio(self) -> float:
        """k / n of the paper: complex channel uses per real source value (3 per pixel)."""
        return self.channel_uses_per_pixel / 3


def latent_channels_for(channel_uses_per_pixel: float) -> int:
    """The largest even latent width whose channel uses per pixel stay within ``channel_uses_per_pixel``."""
    if not (isinstance(channel_uses_per_pixel, (int, float)) and math.isfinite(channel_uses_per_pixel)):
        raise ValueError(f"channel uses per pixel must be a finite number, got {channel_uses_per_pixel!r}")
    channels = 2 * math.floor(channel_uses_per_pixel * DOWNSAMPLING**2)
    if channels < 2:
        raise ValueError(
            f"{channel_uses_per_pixel} channel uses per pixel is below Deep JSCC's minimum "
            f"of {2 / DOWNSAMPLING**2} (one complex symbol per {DOWNSAMPLING}x{DOWNSAMPLING} pixels)"
        )
    return channels


def normalize_power(latent: torch.Tensor) -> torch.Tensor:
    """Scale each image's latent (B, ...) so its complex symbols (pairs of real values) have mean power 1."""
    flat = latent.flatten(1)
    symbols = flat.shape[1] / 2
    power = flat.square().sum(dim=1, keepdim=True) / symbols
    return (flat / power.clamp_min(1e-12).sqrt()).reshape(latent.shape)


def _snr_plane(snr_db: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return (snr_db / SNR_SCALE_DB).to(like.dtype)[:, None, None, None].expand(-1, 1, *like.shape[2:])


def _conv(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 5, stride=stride, padding=2), nn.PReLU(cout))


def _deconv(cin: int, cout: int, stride: int) -> nn.ConvTranspose2d:
    return nn.ConvTranspose2d(cin, cout, 5, stride=stride, padding=2, output_padding=stride - 1)


class DeepJSCC(WeightsFolder, nn.Module):
    """Image in [-1, 1] (B, 3, H, W) -> unit-power complex symbols -> channel -> image in [-1, 1].

    >>> model = DeepJSCC(DeepJSCCConfig(image_size=(16, 32), latent_channels=8))
    >>> model.config.channel_uses, tuple(model.encode(torch.zeros(2, 3, 16, 32), snr_db=10.0).shape)
    (128, (2, 128))
    """

    config_class = DeepJSCCConfig

    def __init__(self, config: DeepJSCCConfig | None = None):
        super().__init__()
        self.config = config = config or DeepJSCCConfig()
        h1, h2, h3, h4 = config.hidden_channels
        self.encoder = nn.Sequential(
            _conv(3 + 1, h1, 2),
            _conv(h1, h2, 2),
            _conv(h2, h3, 1),
            _conv(h3, h4, 1),
            nn.Conv2d(h4, config.latent_channels, 5, padding=2),
        )
        self.decoder = nn.Sequential(
            _deconv(config.latent_channels + 1, h4, 1),
            nn.PReLU(h4),
            _deconv(h4, h3, 1),
            nn.PReLU(h3),
            _deconv(h3, h2, 1),
            nn.PReLU(h2),
            _deconv(h2, h1, 2),
            nn.PReLU(h1),
            _deconv(h1, 3, 2),
            nn.Sigmoid(),
        )

    def _check_images(self, images: torch.Tensor) -> None:
        expected = (3, *self.config.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"images must be (B, {', '.join(map(str, expected))}), got {tuple(images.shape)}")
        if not torch.isfinite(images).all():
            raise ValueError("images hold NaN or Inf values")

    def _snr_tensor(self, snr_db: float | torch.Tensor, batch: int) -> torch.Tensor:
        snr = torch.as_tensor(snr_db, dtype=torch.float32).flatten()
        if snr.numel() == 1:
            snr = snr.expand(batch)
        if snr.numel() != batch or not torch.isfinite(snr).all():
            raise ValueError(f"snr_db must be one finite SNR in dB or one per image ({batch}), got {snr_db}")
        return snr

    def encode(self, images: torch.Tensor, *, snr_db: float | torch.Tensor) -> torch.Tensor:
        """Complex (B, channel_uses) unit-mean-power symbols of ``images`` for a channel at ``snr_db``."""
        self._check_images(images)
        snr = self._snr_tensor(snr_db, images.shape[0]).to(images.device)
        latent = normalize_power(self.encoder(torch.cat([images, _snr_plane(snr, images)], dim=1)).float())
        return torch.view_as_complex(latent.flatten(1).reshape(latent.shape[0], -1, 2).contiguous())

    def decode(self, symbols: torch.Tensor, *, snr_db: float | torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] (B, 3, H, W) from received (equalised) complex symbols (B, channel_uses)."""
        config = self.config
        if not symbols.is_complex() or symbols.dim() != 2 or symbols.shape[1] != config.channel_uses:
            raise ValueError(
                f"symbols must be complex (B, {config.channel_uses}), got {symbols.dtype} {tuple(symbols.shape)}"
            )
        if not torch.isfinite(torch.view_as_real(symbols)).all():
            raise ValueError("the received symbols hold NaN or Inf values")
        height, width = config.image_size
        latent = torch.view_as_real(symbols).reshape(
            symbols.shape[0], config.latent_channels, height // DOWNSAMPLING, width // DOWNSAMPLING
        )
        weight_dtype = next(self.decoder.parameters()).dtype
        latent = latent.to(weight_dtype)
        snr = self._snr_tensor(snr_db, symbols.shape[0]).to(latent.device)
        return self.decoder(torch.cat([latent, _snr_plane(snr, latent)], dim=1)) * 2 - 1

    def forward(
        self,
        images: torch.Tensor,
        *,
        snr_db: float | torch.Tensor,
        channel: SymbolChannel | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Send ``images`` through ``channel`` (AWGN by default) at Es/N0 ``snr_db``: one SNR, or one per image."""
        channel = channel or SymbolChannel()
        snr = self._snr_tensor(snr_db, images.shape[0])
        symbols = self.encode(images, snr_db=snr)
        if bool((snr == snr[0]).all()):
            received = channel(symbols, n0=esn0_db_to_n0(float(snr[0])), generator=generator).symbols
        else:
            received = torch.cat(
                [
                    channel(symbols[i : i + 1], n0=esn0_db_to_n0(float(s)), generator=generator).symbols
                    for i, s in enumerate(snr.tolist())
                ]
            )
        return self.decode(received, snr_db=snr)
