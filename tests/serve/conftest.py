"""Real ``gesco serve`` processes on loopback for the service tests, on a tiny receiver (``tiny_model``).

Test modules import the helpers as ``from conftest import ...`` (pytest puts this folder on the path)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from gesco.receiver.pipeline import DiffusionReceiver, ReceiverConfig
from gesco.receiver.sampling import SamplerConfig
from gesco.receiver.unet import GescoUNet
from helpers import TINY_UNET

SIZE = (16, 32)
TOKEN = "test-token"


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    config = ReceiverConfig(image_size=SIZE, sampler=SamplerConfig(sampler="dpmpp", steps=2, guidance=1.5))
    return DiffusionReceiver(GescoUNet(TINY_UNET), config).save_pretrained(tmp_path_factory.mktemp("tiny-receiver"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    process: subprocess.Popen
    log: Path

    def stop(self, timeout: float = 60) -> bool:
        """SIGTERM; True if the server then shut down cleanly (uvicorn re-raises the signal once it is done)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        return code in (0, -signal.SIGTERM) and "stopped after" in self.log_text()

    def log_text(self) -> str:
        return self.log.read_text()


def start_server(model: Path, log: Path, *options: str, timeout: float = 300) -> Server:
    """``gesco serve`` in its own process on a free loopback port; returns once ``/healthz`` answers."""
    port = free_port()
    command = [sys.executable, "-m", "gesco.cli.main", "serve", "--model", str(model), "--port", str(port)]
    # One intra-op thread: the tests share a small machine and a tiny model gains nothing from more.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "GESCO_SERVE_TOKEN": ""}
    with open(log, "w") as out:
        process = subprocess.Popen(
            [*command, "--sdm", "none", "--deep-jscc", "none", *options], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    server = Server(f"http://127.0.0.1:{port}", process, log)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"gesco serve exited with {process.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{server.url}/healthz", timeout=2) as response:
                assert json.loads(response.read())["status"] == "ok"
                return server
        except OSError:
            time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"gesco serve did not answer within {timeout} s:\n{log.read_text()}")
