"""A fresh corpus of bad inputs, beyond tests/test_bad_inputs.py: does each give a typed, clear error?

Every case is a ``gesco`` command line run in-process (``gesco.cli.main.main``) or an API call, with the
culprit its error should name. Outcomes:

- ``typed-clear``: a non-zero exit with a one-line ``gesco COMMAND: error: ...`` naming the culprit, or a
  ValueError / TypeError / OSError (FileNotFoundError, ...) whose message names it;
- ``unclear``: such an error, but the culprit is not named;
- ``traceback``: any other exception (AttributeError, RuntimeError, ...), or a traceback on stderr;
- ``silent``: exit 0, or no error at all.

    python tools/fresh_bad_inputs.py            # JSON: total, counts per outcome, the cases that failed
    python tools/fresh_bad_inputs.py --all      # every case with its outcome and message

Exit status 0 when every case is typed-clear. A case fixed in the source moves to tests/test_bad_inputs.py.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from helpers import TINY_UNET, tiny_train_config  # noqa: E402

TYPED = (ValueError, TypeError, OSError)
NAN, INF = math.nan, math.inf


@dataclass(frozen=True)
class Case:
    name: str
    culprit: str
    argv: list[str] | None = None  # a command line ({root} is the inputs folder, {out} a fresh output path)
    call: Callable[[Path], object] | None = None  # an API call, given the inputs folder


def make_inputs(root: Path) -> None:
    """A tiny receiver and the broken files the cases point at."""
    from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig
    from gesco.receiver.sampling import SamplerConfig
    from gesco.receiver.unet import GescoUNet

    torch.manual_seed(0)
    config = ReceiverConfig(image_size=(16, 32), sampler=SamplerConfig(sampler="dpmpp", steps=2))
    DiffusionReceiver(GescoUNet(TINY_UNET), config).save_pretrained(root / "model")
    Image.fromarray(np.full((16, 32), 7, dtype=np.uint8)).save(root / "labels.png")
    Image.fromarray(np.full((16, 32), 7000, dtype=np.uint16)).save(root / "labels-16bit.png")
    Image.fromarray(np.full((16, 32, 4), 7, dtype=np.uint8)).save(root / "labels-rgba.png")
    np.save(root / "labels.npy", np.full((16, 32), 7, dtype=np.uint8))
    (root / "loop.png").symlink_to(root / "loop.png")
    (root / "empty.json").write_text("")
    (root / "null.json").write_text("null")
    (root / "a-file").write_text("x")
    (root / "a-dir").mkdir()
    (root / "response.npy").write_bytes(b"")
    np.save(root / "response-real.npy", np.ones((3, 256)))
    np.save(root / "response-short.npy", np.ones(17, dtype=np.complex64))


def train_config(root: Path, out: Path, **changes) -> Path:
    """The tiny training config with ``changes`` (``section__field`` for a nested field), written under root."""
    config = tiny_train_config(out)
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            config[section] = {**config[section], field: value}
        else:
            config[key] = value
    path = root / f"train-{len(list(root.glob('train-*')))}.json"
    # json.dumps writes NaN / Infinity literals, which Python's json (and so gesco) reads back
    path.write_text(json.dumps(config))
    return path


def _payload(values=None, transmitted=None):
    from gesco.semantics.classes import class_table
    from gesco.semantics.payload import Payload

    table = class_table("cityscapes")
    values = torch.zeros(2, table.num_channels, 4, 4) if values is None else values
    transmitted = torch.ones(2, table.num_channels, dtype=torch.bool) if transmitted is None else transmitted
    return Payload(values, transmitted, table)


def _map(labels, table="cityscapes", instances=None, edge_rule=None):
    from gesco.semantics.maps import SemanticMap

    if edge_rule is None:
        return SemanticMap(labels, table, instances)
    return SemanticMap(labels, table, instances, edge_rule)


def _quality(kind, value):
    from gesco.channel.quality import ChannelQuality

    return ChannelQuality(kind, value)


def _received(sigma=None, payload=None, uses=None):
    from gesco.channel.base import Received

    payload = _payload() if payload is None else payload
    sigma = torch.zeros(2) if sigma is None else sigma
    uses = torch.zeros(2, dtype=torch.int64) if uses is None else uses
    return Received(payload, sigma, _quality("psnr_label", 10), uses)


def _receive(received, map_denoiser="fds"):
    from gesco.receiver.receiver import Receiver

    return Receiver(map_denoiser=map_denoiser)(received)


def _learned(received):
    from gesco.receiver.learned_denoiser import LearnedMapDenoiser

    return LearnedMapDenoiser()(received)


def _channel(name, payload, quality, **options):
    from gesco.channel.registry import build_channel

    return build_channel(name, **options)(payload, quality)


def _ofdm(**fields):
    from gesco.channel.ofdm.config import OfdmConfig

    return OfdmConfig(**fields)


def _link(semantic_map, quality=None, **options):
    from gesco.link import Link

    quality = _quality("psnr_label", 10) if quality is None else quality
    return Link(**options)(semantic_map, quality)


def _good_map():
    return _map(torch.full((2, 4, 4), 7))


def _transmit(thing):
    from gesco.semantics.transmitter import Transmitter

    return Transmitter()(thing)


def _symbols(x, n0=0.1, **options):
    from gesco.channel.digital.symbol_channel import SymbolChannel

    return SymbolChannel(**options)(x, n0=n0)


def _digital(**fields):
    from gesco.channel.digital.config import DigitalConfig

    return DigitalConfig(**fields)


def _budget(height, width, per_pixel):
    from gesco.baselines.accounting import channel_use_budget

    return channel_use_budget(height, width, per_pixel=per_pixel)


def _write_json(path, data):
    from gesco.io import write_json

    return write_json(path, data)


def _load_tensors(path):
    from gesco.io import load_tensors

    return load_tensors(path)


def _read_labels(path):
    from gesco.datasets.label_files import read_label_map
    from gesco.semantics.classes import class_table

    return read_label_map(path, class_table("cityscapes"))


def _from_pretrained(path):
    from gesco.receiver.pipeline import DiffusionReceiver

    return DiffusionReceiver.from_pretrained(path)


TRANSMIT = ["transmit", "--model", "{root}/model", "--synthetic", "1", "--out", "{out}"]
PSNR = ["--psnr", "10"]
EVALUATE = ["evaluate", "--model", "{root}/model", "--data", "synthetic", "--no-fid", "--out", "{out}"]
COMPARE = ["compare", "--model", "{root}/model", "--out", "{out}"]


def cases() -> list[Case]:
    cli = [
        # transmit: numbers
        Case("transmit-seed-huge", "--seed", [*TRANSMIT, *PSNR, "--seed", str(2**70)]),
        Case("transmit-synthetic-negative", "-1", [*TRANSMIT[:4], "-1", *TRANSMIT[5:], *PSNR]),
        Case("transmit-psnr-minus-zero", "-0", [*TRANSMIT, "--psnr=-0.0"]),
        Case("transmit-psnr-1e400", "inf", [*TRANSMIT, "--psnr", "1e400"]),
        Case("transmit-steps-huge", "steps=", [*TRANSMIT, *PSNR, "--steps", str(10**20)]),
        Case("transmit-guidance-minus-1e400", "guidance=-inf", [*TRANSMIT, *PSNR, "--guidance=-1e400"]),
        Case(
            "transmit-coherence-huge-negative",
            "--coherence-symbols",
            [*TRANSMIT, *PSNR, "--channel", "rayleigh", "--coherence-symbols", str(-(10**30))],
        ),
        Case("transmit-esn0-1e400-negative", "-inf", [*TRANSMIT, "--channel", "unit-power", "--esn0-db=-1e400"]),
        # transmit: paths
        Case(
            "transmit-labels-unicode-missing",
            "ñ-карта.png",
            [*TRANSMIT[:3], "--labels", "{root}/ñ-карта.png", *TRANSMIT[5:], *PSNR],
        ),
        Case(
            "transmit-labels-symlink-loop",
            "loop.png",
            [*TRANSMIT[:3], "--labels", "{root}/loop.png", *TRANSMIT[5:], *PSNR],
        ),
        Case(
            "transmit-labels-npy", "labels.npy", [*TRANSMIT[:3], "--labels", "{root}/labels.npy", *TRANSMIT[5:], *PSNR]
        ),
        Case(
            "transmit-labels-16bit",
            "labels-16bit.png",
            [*TRANSMIT[:3], "--labels", "{root}/labels-16bit.png", *TRANSMIT[5:], *PSNR],
        ),
        Case(
            "transmit-labels-rgba",
            "labels-rgba.png",
            [*TRANSMIT[:3], "--labels", "{root}/labels-rgba.png", *TRANSMIT[5:], *PSNR],
        ),
        Case("transmit-labels-a-dir", "a-dir", [*TRANSMIT[:3], "--labels", "{root}/a-dir", *TRANSMIT[5:], *PSNR]),
        Case(
            "transmit-image-a-dir",
            "a-dir",
            [*TRANSMIT[:3], "--labels", "{root}/labels.png", "--image", "{root}/a-dir", *TRANSMIT[5:], *PSNR],
        ),
        Case(
            "transmit-instances-missing",
            "no-instances.png",
            [
                *TRANSMIT[:3],
                "--labels",
                "{root}/labels.png",
                "--instances",
                "{root}/no-instances.png",
                *TRANSMIT[5:],
                *PSNR,
            ],
        ),
        Case(
            "transmit-model-empty-name", "''", ["transmit", "--model", "", "--synthetic", "1", "--out", "{out}", *PSNR]
        ),
        Case(
            "transmit-model-unicode-missing",
            "modèle-ñ",
            ["transmit", "--model", "{root}/modèle-ñ", "--synthetic", "1", "--out", "{out}", *PSNR],
        ),
        Case(
            "transmit-model-json-file",
            "receiver.json",
            ["transmit", "--model", "{root}/model/receiver.json", "--synthetic", "1", "--out", "{out}", *PSNR],
        ),
        Case("transmit-out-below-a-file", "a-file", [*TRANSMIT[:-1], "{root}/a-file/out", *PSNR]),
        # transmit: channels
        Case("transmit-ofdm-speed-nan", "speed", [*TRANSMIT, "--channel", "ofdm", "--esn0-db", "5", "--speed", "nan"]),
        Case(
            "transmit-ofdm-delay-zero",
            "delay_spread",
            [*TRANSMIT, "--channel", "ofdm", "--esn0-db", "5", "--delay-spread", "0"],
        ),
        Case(
            "transmit-ofdm-carrier-inf",
            "carrier_frequency",
            [*TRANSMIT, "--channel", "ofdm", "--esn0-db", "5", "--carrier-frequency", "1e400"],
        ),
        Case("transmit-ofdm-speed-negative", "speed", [*TRANSMIT, "--channel", "ofdm", "--esn0-db", "5", "--speed=-3"]),
        Case("transmit-speed-on-awgn", "speed_kmh", [*TRANSMIT, *PSNR, "--speed", "30"]),
        Case(
            "transmit-response-on-awgn",
            "frequency_response",
            [*TRANSMIT, *PSNR, "--frequency-response", "{root}/response-real.npy"],
        ),
        Case(
            "transmit-response-missing",
            "no-response.npy",
            [
                *TRANSMIT,
                "--channel",
                "ofdm-official",
                "--esn0-db",
                "5",
                "--frequency-response",
                "{root}/no-response.npy",
            ],
        ),
        Case(
            "transmit-response-empty",
            "response.npy",
            [*TRANSMIT, "--channel", "ofdm-official", "--esn0-db", "5", "--frequency-response", "{root}/response.npy"],
        ),
        Case(
            "transmit-response-real",
            "response-real.npy",
            [
                *TRANSMIT,
                "--channel",
                "ofdm-official",
                "--esn0-db",
                "5",
                "--frequency-response",
                "{root}/response-real.npy",
            ],
        ),
        Case(
            "transmit-response-short",
            "response-short.npy",
            [
                *TRANSMIT,
                "--channel",
                "ofdm-official",
                "--esn0-db",
                "5",
                "--frequency-response",
                "{root}/response-short.npy",
            ],
        ),
        # evaluate and compare, before any work
        Case("evaluate-psnr-1e400", "inf", [*EVALUATE, "--psnr", "1e400"]),
        Case("evaluate-n-zero", "--n", [*EVALUATE, "--n", "0"]),
        Case("evaluate-samples-negative", "--samples", [*EVALUATE, "--samples", "-1"]),
        Case("evaluate-out-a-file", "a-file", [*EVALUATE[:-1], "{root}/a-file", "--n", "1"]),
        Case("evaluate-methods-unknown", "oracle9", [*EVALUATE, "--n", "1", "--methods", "oracle9"]),
        Case("compare-code-rate-zero", "code_rate", [*COMPARE, "--code-rate", "0"]),
        Case("compare-code-rate-nan", "code_rate", [*COMPARE, "--code-rate", "nan"]),
        Case("compare-code-rate-above-one", "code_rate", [*COMPARE, "--code-rate", "1.5"]),
        Case("compare-block-bits-negative", "--block-bits", [*COMPARE, "--block-bits", "-8"]),
        Case("compare-speed-on-awgn", "--channel ofdm", [*COMPARE, "--speed", "30"]),
        Case("compare-ofdm-delay-inf", "delay_spread", [*COMPARE, "--channel", "ofdm", "--delay-spread", "inf"]),
        Case("compare-examples-negative", "--examples", [*COMPARE, "--examples", "-2"]),
        Case(
            "compare-out-a-file",
            "a-file",
            [
                *COMPARE[:-1],
                "{root}/a-file",
                "--n",
                "1",
                "--aware-model",
                "none",
                "--methods",
                "deep-jscc",
                "--examples",
                "0",
                "--no-fid",
            ],
        ),
        # data synth
        Case(
            "data-size-1e3",
            "'1e3x8'",
            ["data", "synth", "--layout", "folder", "--n", "1", "--size", "1e3x8", "--out", "{out}"],
        ),
        Case(
            "data-size-negative",
            "'-16x32'",
            ["data", "synth", "--layout", "folder", "--n", "1", "--size=-16x32", "--out", "{out}"],
        ),
        Case(
            "data-out-below-a-file",
            "a-file",
            ["data", "synth", "--layout", "folder", "--n", "1", "--size", "16x32", "--out", "{root}/a-file/data"],
        ),
        # training configs
        Case("train-config-null", "null.json", ["train", "--config", "{root}/null.json"]),
        Case("train-config-a-dir", "a-dir", ["train", "--config", "{root}/a-dir"]),
        Case("train-config-empty", "empty.json", ["train", "--config", "{root}/empty.json"]),
        Case("train-batch-size-1e400", "batch_size", ["train", "--config", "@batch_size=inf"]),
        Case("train-learning-rate-zero", "learning_rate", ["train", "--config", "@learning_rate=-0.0"]),
        Case("train-learning-rate-inf", "learning_rate", ["train", "--config", "@learning_rate=inf"]),
        Case("train-noise-sigma-negative", "noise_sigmas", ["train", "--config", "@noise_sigmas=[-0.1]"]),
        Case("train-noise-sigma-inf", "noise_sigmas", ["train", "--config", "@noise_sigmas=[inf]"]),
        Case("train-dropout-negative", "condition_dropout", ["train", "--config", "@condition_dropout=-0.5"]),
        Case("train-ema-decay-negative", "ema_decay", ["train", "--config", "@ema_decay=-1.0"]),
        Case("train-grad-clip-nan", "grad_clip", ["train", "--config", "@grad_clip=nan"]),
        Case("train-warmup-float", "warmup_steps", ["train", "--config", "@warmup_steps=1.5"]),
        Case("train-data-null", "data", ["train", "--config", "@data=null"]),
        Case("train-sampler-list", "sampler", ["train", "--config", "@sampler=[]"]),
        Case("train-version-int", "_gesco_version", ["train", "--config", "@_gesco_version=3"]),
        Case("train-scenes-zero", "num_scenes", ["train", "--config", "@data__num_scenes=0"]),
        Case("train-channel-mult-empty", "channel_mult", ["train", "--config", "@model__channel_mult=[]"]),
        Case("train-channel-mult-zero", "channel_mult", ["train", "--config", "@model__channel_mult=[0]"]),
        Case("train-head-channels-zero", "head_channels", ["train", "--config", "@model__head_channels=0"]),
        Case("train-res-blocks-negative", "num_res_blocks", ["train", "--config", "@model__num_res_blocks=-1"]),
        Case("train-base-channels-huge", "base_channels", ["train", "--config", "@model__base_channels=1000000000"]),
        Case("train-output-dir-a-file", "a-file", ["train", "--config", "@output_dir=A_FILE"]),
    ]
    api = [
        # the transmitter and the link
        Case("transmitter-a-tensor", "Tensor", call=lambda r: _transmit(torch.zeros(1, 4, 4, dtype=torch.long))),
        Case("transmitter-none", "NoneType", call=lambda r: _transmit(None)),
        Case("link-transmitter-object", "transmitter", call=lambda r: _link(_good_map(), transmitter=object())),
        Case("link-receiver-string", "receiver", call=lambda r: _link(_good_map(), receiver="fds")),
        Case(
            "link-quality-per-map-too-few",
            "2 maps",
            call=lambda r: _link(_good_map(), _quality("psnr_label", [10, 5, 1, 1])),
        ),
        Case("map-labels-negative", "-1", call=lambda r: _map(torch.full((1, 4, 4), -1))),
        Case("map-labels-4d", "(1, 1, 4, 4)", call=lambda r: _map(torch.zeros(1, 1, 4, 4, dtype=torch.long))),
        Case("map-labels-bool", "bool", call=lambda r: _map(torch.zeros(1, 4, 4, dtype=torch.bool))),
        Case("map-labels-numpy", "ndarray", call=lambda r: _map(np.zeros((1, 4, 4), dtype=np.int64))),
        Case("map-table-none", "None", call=lambda r: _map(torch.zeros(1, 4, 4, dtype=torch.long), table=None)),
        Case(
            "map-instances-float",
            "float",
            call=lambda r: _map(torch.zeros(1, 4, 4, dtype=torch.long), instances=torch.zeros(1, 4, 4)),
        ),
        Case(
            "map-edge-rule-unknown",
            "'diagonal'",
            call=lambda r: _map(torch.zeros(1, 4, 4, dtype=torch.long), edge_rule="diagonal"),
        ),
        # payloads and what the receiver gets
        Case("payload-numpy-values", "ndarray", call=lambda r: _payload(values=np.zeros((2, 36, 4, 4)))),
        Case("payload-mask-not-bool", "transmitted", call=lambda r: _payload(transmitted=torch.ones(2, 36))),
        Case("received-sigma-shape", "sigma", call=lambda r: _receive(_received(sigma=torch.zeros(3)))),
        Case("received-sigma-nan", "sigma", call=lambda r: _receive(_received(sigma=torch.full((2,), NAN)))),
        Case("received-not-a-payload", "payload", call=lambda r: _receive(_received(payload=torch.zeros(2, 36, 4, 4)))),
        Case("receiver-not-received", "Payload", call=lambda r: _receive(_payload())),
        Case("receiver-denoiser-unknown", "median", call=lambda r: _receive(_received(), map_denoiser="median")),
        Case("learned-denoiser-sigma-shape", "sigma", call=lambda r: _learned(_received(sigma=torch.zeros(5)))),
        Case(
            "learned-denoiser-3-channels",
            "(2, 3, 4, 4)",
            call=lambda r: _learned(
                _received(
                    payload=_payload(values=torch.zeros(2, 3, 4, 4), transmitted=torch.ones(2, 3, dtype=torch.bool))
                )
            ),
        ),
        # qualities and channels
        Case("quality-tensor-2d", "(2, 2)", call=lambda r: _quality("peak_snr_db", torch.zeros(2, 2))),
        Case("quality-nested-list", "list", call=lambda r: _quality("peak_snr_db", [[3.0]])),
        Case("quality-numpy-nan", "NaN", call=lambda r: _quality("peak_snr_db", np.float64("nan"))),
        Case("awgn-a-map", "SemanticMap", call=lambda r: _channel("awgn", _good_map(), _quality("psnr_label", 10))),
        Case("awgn-quality-number", "float", call=lambda r: _channel("awgn", _payload(), 10.0)),
        Case("awgn-esn0", "Es/N0", call=lambda r: _channel("awgn", _payload(), _quality("esn0_db", 3))),
        Case("channel-unknown-name", "'wifi'", call=lambda r: _channel("wifi", _payload(), _quality("esn0_db", 3))),
        Case(
            "unit-power-psnr",
            "PSNR label",
            call=lambda r: _channel("unit-power", _payload(), _quality("psnr_label", 10)),
        ),
        Case("symbols-real-input", "complex", call=lambda r: _symbols(torch.ones(1, 8))),
        Case("symbols-n0-inf", "n0=inf", call=lambda r: _symbols(torch.ones(1, 8, dtype=torch.complex64), n0=INF)),
        Case("symbols-1d", "(8,)", call=lambda r: _symbols(torch.ones(8, dtype=torch.complex64))),
        Case(
            "symbols-coherence-negative",
            "coherence_symbols=-1",
            call=lambda r: _symbols(torch.ones(1, 8, dtype=torch.complex64), fading="rayleigh", coherence_symbols=-1),
        ),
        # OFDM settings
        Case("ofdm-delay-string", "delay_spread_ns", call=lambda r: _ofdm(delay_spread_ns="100")),
        Case("ofdm-spacing-none", "subcarrier_spacing_khz", call=lambda r: _ofdm(subcarrier_spacing_khz=None)),
        Case("ofdm-symbols-string", "ofdm_symbols", call=lambda r: _ofdm(ofdm_symbols="14")),
        Case("ofdm-speed-1e400", "speed_kmh", call=lambda r: _ofdm(speed_kmh=1e400)),
        Case("ofdm-fft-zero", "fft_size", call=lambda r: _ofdm(fft_size=0)),
        Case("ofdm-fft-fraction", "fft_size", call=lambda r: _ofdm(fft_size=2.5)),
        Case("ofdm-antennas-four", "antennas", call=lambda r: _ofdm(antennas=4)),
        Case("ofdm-antennas-bool", "antennas", call=lambda r: _ofdm(antennas=True)),
        Case("ofdm-prefix-negative", "cyclic_prefix", call=lambda r: _ofdm(cyclic_prefix=-1)),
        Case("ofdm-pilots-repeated", "pilot_symbols", call=lambda r: _ofdm(pilot_symbols=(2, 2))),
        Case("ofdm-pilots-outside", "pilot_symbols", call=lambda r: _ofdm(pilot_symbols=(14,))),
        Case("ofdm-ls-without-pilots", "pilot", call=lambda r: _ofdm(pilot_symbols=())),
        Case("ofdm-symbols-zero", "ofdm_symbols", call=lambda r: _ofdm(ofdm_symbols=0)),
        Case("ofdm-model-unknown", "'tdl-z'", call=lambda r: _ofdm(model="tdl-z")),
        Case("ofdm-from-dict-antennas-string", "antennas", call=lambda r: _ofdm_from_dict({"antennas": "2"})),
        # digital link and budgets
        Case("digital-code-rate-zero", "code_rate", call=lambda r: _digital(code_rate=0.0)),
        Case("digital-code-rate-nan", "code_rate", call=lambda r: _digital(code_rate=NAN)),
        Case("digital-block-bits-zero", "block_bits", call=lambda r: _digital(block_bits=0)),
        Case("digital-modulation-unknown", "'8psk'", call=lambda r: _digital(modulation="8psk")),
        Case("budget-zero-height", "height", call=lambda r: _budget(0, 32, 1.0)),
        Case("budget-minus-zero", "per_pixel=-0.0", call=lambda r: _budget(16, 32, -0.0)),
        Case("budget-1e400", "per_pixel=inf", call=lambda r: _budget(16, 32, 1e400)),
        # files
        Case("write-json-to-a-dir", "a-dir", call=lambda r: _write_json(r / "a-dir", {"a": 1})),
        Case("write-json-below-a-file", "a-file", call=lambda r: _write_json(r / "a-file" / "x.json", {"a": 1})),
        Case("write-json-minus-inf", "b[0]", call=lambda r: _write_json(r / "x.json", {"b": [-1e400]})),
        Case("load-tensors-a-dir", "a-dir", call=lambda r: _load_tensors(r / "a-dir")),
        Case("load-tensors-empty", "empty.json", call=lambda r: _load_tensors(r / "empty.json")),
        Case("read-labels-loop", "loop.png", call=lambda r: _read_labels(r / "loop.png")),
        Case("read-labels-npy", "labels.npy", call=lambda r: _read_labels(r / "labels.npy")),
        Case("from-pretrained-unicode", "ünïcode", call=lambda r: _from_pretrained(r / "ünïcode")),
        Case("from-pretrained-a-file", "a-file", call=lambda r: _from_pretrained(r / "a-file")),
    ]
    return cli + api


def _ofdm_from_dict(data):
    from gesco.channel.ofdm.config import OfdmConfig

    return OfdmConfig.from_dict(data)


def expand(argv: list[str], root: Path, out: Path) -> list[str]:
    """Fill {root} and {out}; ``@field=json`` after --config writes a training config with that change."""
    words = []
    for word in argv:
        if word.startswith("@"):
            key, _, value = word[1:].partition("=")
            literal = value.replace("inf", "Infinity").replace("nan", "NaN")
            value = str(root / "a-file") if value == "A_FILE" else json.loads(literal)
            words.append(str(train_config(root, out, **{key: value})))
        else:
            words.append(word.format(root=root, out=out))
    return words


def run_case(case: Case, root: Path, out: Path) -> tuple[str, str]:
    """(outcome, message)."""
    from gesco.cli.main import main

    if case.argv is not None:
        argv = expand(case.argv, root, out)
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                code = main(argv)
        except SystemExit as stopped:  # argparse's usage errors
            code = stopped.code
        except Exception:  # noqa: BLE001 - any escape is a traceback
            return "traceback", traceback.format_exc(limit=-3).strip().splitlines()[-1]
        text = err.getvalue()
        lines = [line for line in text.splitlines() if line.strip()]
        last = lines[-1] if lines else ""
        if "Traceback" in text:
            return "traceback", last
        if code == 0:
            return "silent", "exit 0"
        named = case.culprit in last and ": error: " in last
        return ("typed-clear" if named else "unclear"), last
    try:
        case.call(root)
    except TYPED as err:
        message = f"{type(err).__name__}: {err}"
        named = case.culprit in str(err) or case.culprit in str(getattr(err, "filename", "") or "")
        return ("typed-clear" if named else "unclear"), message
    except Exception as err:  # noqa: BLE001 - any other type is a traceback for the user
        return "traceback", f"{type(err).__name__}: {err}"
    return "silent", "no error"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--all", action="store_true", help="list every case, not only those that failed")
    parser.add_argument("--only", help="run the cases whose name contains this")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = []
    with tempfile.TemporaryDirectory(prefix="gesco-fresh-") as folder:
        root = Path(folder) / "inputs"
        root.mkdir()
        make_inputs(root)
        cwd = os.getcwd()
        os.chdir(folder)  # a case that writes into "." writes here
        try:
            for index, case in enumerate(c for c in cases() if args.only is None or args.only in c.name):
                outcome, message = run_case(case, root, Path(folder) / f"out-{index}")
                results.append({"name": case.name, "outcome": outcome, "message": message[:300]})
        finally:
            os.chdir(cwd)
    counts = {k: sum(r["outcome"] == k for r in results) for k in ("typed-clear", "unclear", "traceback", "silent")}
    shown = results if args.all else [r for r in results if r["outcome"] != "typed-clear"]
    print(json.dumps({"total": len(results), **counts, "cases": shown}, indent=1, ensure_ascii=False))
    return 0 if counts["typed-clear"] == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
