"""Names and numbers that the command line needs before it may import torch.

``gesco --help`` and ``gesco <command> --help`` build their parsers from these values: sampler names, data set
layouts, seed ranges, the demo's PSNR labels and the methods of ``gesco compare``. This module imports nothing,
so reading it costs no time; the library modules that define behaviour around these values import them from
here (``tests/cli/test_cli_help.py`` checks that the values agree with the modules that use them).
"""

#: Samplers of :class:`gesco.receiver.sampling.SamplerConfig` (see that module for what each one is).
SAMPLERS = ("ddpm", "ddim", "dpmpp", "dpmpp-sde", "unipc", "lcm")

#: On-disk data set layouts that gesco reads and writes (``gesco data synth --layout``, ``gesco evaluate --layout``).
DATA_LAYOUTS = ("cityscapes", "coco-stuff", "ade20k", "folder")

#: First synthetic scene seed of evaluation sets; training scenes must stay below it.
EVALUATION_SEED_OFFSET = 1_000_000
#: Synthetic seeds from here on are the segmenter's validation scenes.
VALIDATION_SEED_OFFSET = 2_000_000
#: First synthetic training seed of the detector and the depth network (``gesco train-detector``,
#: ``gesco train-depth``): their default 100,000 scenes stay clear of the other trainers' and the evaluation seeds.
GEOMETRY_TRAINING_SEED_OFFSET = 600_000

#: The PSNR labels of ``gesco demo``: clean, then three noise levels of the paper.
DEMO_PSNRS = (100.0, 10.0, 5.0, 1.0)

#: The methods of ``gesco compare``, in report order (labels in :mod:`gesco.evaluation.compare`).
COMPARE_METHODS = ("classical", "deep-jscc", "gesco-analog", "gesco-digital", "gesco-analog-aware")

#: Every channel by name (``--channel``) as ``"module:Class"``, imported only when built
#: (:func:`gesco.channel.registry.build_channel`): registering a new channel is one line here.
CHANNELS = {
    "awgn": "gesco.channel.awgn:AWGNChannel",
    "rayleigh": "gesco.channel.fading:RayleighBlockFading",
    "unit-power": "gesco.channel.unit_power:UnitPowerAnalogChannel",
    "digital": "gesco.channel.digital.map_channel:DigitalGesco",
    "ofdm": "gesco.channel.ofdm.map_channels:OfdmAnalogChannel",
    "ofdm-digital": "gesco.channel.ofdm.map_channels:OfdmDigitalGesco",
    "ofdm-official": "gesco.channel.ofdm.official:OfficialOfdmBits",
}
CHANNEL_NAMES = tuple(CHANNELS)

#: Channel models of the OFDM link (``gesco.channel.ofdm``): flat, and the 3GPP TR 38.901 TDL and CDL profiles.
OFDM_MODEL_NAMES = ("awgn", *(f"{family}-{p}" for family in ("tdl", "cdl") for p in "abcde"))

#: Complex symbols that share one Rayleigh coefficient unless told otherwise (the coherence length), for every
#: fading channel (analog, unit-power analog, digital) and the CLI's ``--coherence-symbols``.
DEFAULT_COHERENCE_SYMBOLS = 1024

#: Map denoisers of :mod:`gesco.receiver.map_denoisers`, by name (``--map-denoiser``).
MAP_DENOISER_NAMES = ("fds", "none")
