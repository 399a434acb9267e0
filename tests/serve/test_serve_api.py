"""``gesco serve`` as a real process on loopback: answers, refusals, batching, overload, shutdown; ``gesco send``."""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

import numpy as np
import pytest
import torch

from conftest import SIZE, TOKEN, start_server
from gesco.channel.quality import ChannelQuality
from gesco.channel.registry import build_channel
from gesco.cli.main import main
from gesco.datasets.synthetic import SyntheticStreets
from gesco.semantics.maps import SemanticMap
from gesco.serve.client import ServerAnswerError, answer_image, post_message, transmit

pytest.importorskip("fastapi", reason="the serve extra is not installed: pip install 'gesco[serve]'")
pytest.importorskip("uvicorn", reason="the serve extra is not installed: pip install 'gesco[serve]'")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tiny_model, tmp_path_factory):
    server = start_server(
        tiny_model, tmp_path_factory.mktemp("log") / "serve.log", "--token", TOKEN, "--max-batch", "8"
    )
    yield server
    assert server.stop()


def scene_message(seed: int, *, channel: str = "awgn", quality: ChannelQuality | None = None, tag: int = 0) -> bytes:
    quality = quality or ChannelQuality.psnr_label(10)
    scene = SyntheticStreets(*SIZE).scene(seed)
    semantic_map = SemanticMap(torch.from_numpy(scene.labels.astype(np.int64)), "cityscapes")
    options = {"link": None} if channel == "digital" else {}
    message, _ = transmit(
        semantic_map, build_channel(channel, **options), quality, channel_name=channel, seed=seed, tag=tag
    )
    return message


def raw_post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, dict]:
    """POST without urllib's help (chunked bodies, no Content-Length): status and JSON answer."""
    parts = urlparse(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        connection.request(
            "POST", parts.path, body=body, headers=headers, encode_chunked="Transfer-Encoding" in headers
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def test_health_is_open_and_everything_else_needs_the_token(server):
    with urllib.request.urlopen(f"{server.url}/healthz") as response:
        health = json.loads(response.read())
    assert health["status"] == "ok" and health["image_size"] == list(SIZE) and health["table"] == "cityscapes"
    for path in ("/metrics", "/openapi.json", "/", "/v1/demo/options"):
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(f"{server.url}{path}")
        assert refused.value.code == 401, path
    with pytest.raises(ServerAnswerError) as refused:
        post_message(f"{server.url}/v1/regenerate", scene_message(1), token="wrong")
    assert refused.value.status == 401


def test_an_analog_message_comes_back_as_its_image_with_metadata(server):
    answer = post_message(f"{server.url}/v1/regenerate", scene_message(1, tag=2**64 - 2), seed=3, token=TOKEN)
    assert answer["tag"] == str(2**64 - 2) and answer["kind"] == "analog" and answer["channel"] == "awgn"
    assert answer["sigma"] == pytest.approx(0.36) and answer["sigma_source"] == "channel"
    assert answer["map_denoiser"] == "fds" and answer["sampler"]["steps"] == 2 and answer["seconds"] > 0
    image = answer_image(answer)
    assert image.shape == (*SIZE, 3) and image.std() > 0
    # The same message and seed give the same image: the answer is the request's own.
    again = post_message(f"{server.url}/v1/regenerate", scene_message(1, tag=2**64 - 2), seed=3, token=TOKEN)
    assert np.array_equal(answer_image(again), image)
    other_seed = post_message(f"{server.url}/v1/regenerate", scene_message(1), seed=4, token=TOKEN)
    assert not np.array_equal(answer_image(other_seed), image)


def test_a_digital_message_is_regenerated_without_a_map_denoiser(server):
    pytest.importorskip("sionna", reason="the digital link needs gesco[digital]")
    answer = post_message(
        f"{server.url}/v1/regenerate",
        scene_message(2, channel="digital", quality=ChannelQuality.esn0_db(10)),
        token=TOKEN,
    )
    assert answer["kind"] == "digital" and answer["map_denoiser"] == "none" and answer["sigma"] == 0


def test_malformed_foreign_and_oversized_bodies_are_refused_with_their_reason(server):
    url, auth = f"{server.url}/v1/regenerate", {"Authorization": f"Bearer {TOKEN}"}
    message = scene_message(1)
    status, answer = raw_post(url, message[:-3], auth)
    assert status == 400 and answer["error"] == "TruncatedMessageError"
    status, answer = raw_post(url, b"GSCW\x09" + message[5:], auth)
    assert status == 400 and answer["error"] == "UnsupportedVersionError"
    # A well-formed map of another size than the receiver makes.
    scene = SyntheticStreets(32, 32).scene(0)
    semantic_map = SemanticMap(torch.from_numpy(scene.labels.astype(np.int64)), "cityscapes")
    other, _ = transmit(semantic_map, build_channel("awgn"), ChannelQuality.psnr_label(5), channel_name="awgn", seed=0)
    status, answer = raw_post(url, other, auth)
    assert status == 422 and answer["error"] == "IncompatibleMessageError" and "16x32" in answer["detail"]
    huge = bytes(8 * 2**20 + 1)
    status, answer = raw_post(url, huge, auth)
    assert status == 413
    status, answer = raw_post(url, huge, {**auth, "Transfer-Encoding": "chunked"})
    assert status == 413
    # The server is alive and well after all of them.
    assert post_message(url, message, token=TOKEN)["kind"] == "analog"


def test_concurrent_requests_share_batches_and_each_gets_its_own_image(server):
    url = f"{server.url}/v1/regenerate"
    solo = {seed: answer_image(post_message(url, scene_message(seed), seed=seed, token=TOKEN)) for seed in range(4)}
    with ThreadPoolExecutor(16) as pool:
        answers = list(
            pool.map(lambda i: post_message(url, scene_message(i % 4, tag=i), seed=i % 4, token=TOKEN), range(16))
        )
    assert [answer["tag"] for answer in answers] == [str(i) for i in range(16)]
    assert max(answer["batch_size"] for answer in answers) > 1
    for i, answer in enumerate(answers):
        # Batch mates change the float rounding of the network passes, never whose image it is.
        assert np.abs(answer_image(answer).astype(int) - solo[i % 4].astype(int)).max() <= 2, i
    request = urllib.request.Request(f"{server.url}/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request) as response:
        metrics = dict(
            line.rsplit(" ", 1) for line in response.read().decode().splitlines() if not line.startswith("#")
        )
    assert int(metrics["gesco_images_total"]) > int(metrics["gesco_batches_total"]) > 0
    assert int(metrics['gesco_http_responses_total{status="200"}']) >= 20
    assert int(metrics["gesco_resident_memory_bytes"]) > 0


def test_the_openapi_schema_describes_the_endpoints(server):
    request = urllib.request.Request(f"{server.url}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(request) as response:
        schema = json.loads(response.read())
    regenerate = schema["paths"]["/v1/regenerate"]["post"]
    assert "application/octet-stream" in regenerate["requestBody"]["content"]
    assert {"200", "400", "413", "422", "503"} <= set(regenerate["responses"])
    assert {"/healthz", "/metrics", "/v1/demo", "/v1/demo/{job_id}"} <= set(schema["paths"])


def test_gesco_send_writes_what_the_server_answered(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GESCO_SERVE_TOKEN", TOKEN)
    out = tmp_path / "sent"
    argv = ["send", "--server", server.url, "--synthetic", "5", "--psnr", "5", "--tag", "42", "--out", str(out)]
    assert main(argv) == 0
    answer = json.loads((out / "answer.json").read_text())
    assert answer["tag"] == "42" and answer["sigma"] == pytest.approx(0.6) and answer["message_bytes"] > 0
    assert (out / "regenerated.png").stat().st_size > 0 and (out / "received.png").stat().st_size > 0
    assert "regenerated the image" in capsys.readouterr().out
    monkeypatch.setenv("GESCO_SERVE_TOKEN", "wrong")
    assert main([*argv[:-1], str(tmp_path / "refused")]) == 2
    assert "answered 401" in capsys.readouterr().err and not (tmp_path / "refused").exists()


def test_overload_answers_503_instead_of_queueing_without_bound(tiny_model, tmp_path):
    # One request at a time, one waiting, and a slow sampler: most of 12 simultaneous requests must be refused.
    server = start_server(
        tiny_model,
        tmp_path / "serve.log",
        "--max-batch",
        "1",
        "--max-queue",
        "1",
        "--steps",
        "40",
        "--max-wait-ms",
        "0",
    )
    try:
        url = f"{server.url}/v1/regenerate"
        message = scene_message(1)

        def attempt(_):
            try:
                return post_message(url, message)["kind"]
            except ServerAnswerError as err:
                return err.status

        with ThreadPoolExecutor(12) as pool:
            outcomes = list(pool.map(attempt, range(12)))
        assert set(outcomes) == {"analog", 503} and outcomes.count("analog") >= 1
        assert post_message(url, message)["kind"] == "analog"  # alive once the burst is over
    finally:
        assert server.stop()


def in_flight(server) -> int:
    with urllib.request.urlopen(f"{server.url}/metrics") as response:
        lines = response.read().decode().splitlines()
    return int(next(line.split()[1] for line in lines if line.startswith("gesco_in_flight ")))


def test_sigterm_answers_the_requests_in_flight_then_exits(tiny_model, tmp_path):
    server = start_server(tiny_model, tmp_path / "serve.log", "--steps", "60")
    answers = []
    sender = threading.Thread(
        target=lambda: answers.append(post_message(f"{server.url}/v1/regenerate", scene_message(1)))
    )
    try:
        sender.start()
        deadline = time.monotonic() + 60
        while in_flight(server) == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert in_flight(server) == 1  # the signal arrives while the request is being regenerated
    finally:
        stopped = server.stop()
    sender.join(60)
    assert stopped and len(answers) == 1 and answers[0]["kind"] == "analog"
    log = server.log_text()
    assert log.index("Shutting down") < log.index("regenerated a batch of 1")
    assert "stopped after 1 images in 1 batches" in log
