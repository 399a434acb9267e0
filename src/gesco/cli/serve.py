"""``gesco serve``: the receiver as a network service (needs ``pip install 'gesco[serve]'``).

Loads a receiver (a shipped model's name or a folder) and answers ``POST /v1/regenerate`` with the image
regenerated from a wire message (``gesco send`` makes them), batching concurrent requests. Also serves a web demo
at ``/``, ``/healthz``, ``/metrics`` and the OpenAPI schema at ``/openapi.json`` (``/docs`` to browse it).
Binds to 127.0.0.1 unless told otherwise; with ``--token`` (or GESCO_SERVE_TOKEN) every path but ``/healthz``
needs ``Authorization: Bearer TOKEN`` (the page: ``/?token=TOKEN``). SIGTERM or Ctrl-C stops taking requests,
answers those in flight, then exits.
"""

from __future__ import annotations

import argparse
import os

from gesco.cli.backend_options import add_backend_options
from gesco.cli.options import add_sampler_options
from gesco.constants import MAP_DENOISER_NAMES

DEFAULT_MODEL = "synthetic-streets-64x128"
DEFAULT_SDM = "synthetic-streets-64x128-sdm"
DEFAULT_DEEP_JSCC = "deep-jscc-synthetic-streets-64x128"


class MissingExtraError(ValueError):
    """A command needs an optional extra that is not installed; the message names the pip command."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="the receiver as a network service, with a web demo",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", default=DEFAULT_MODEL, help=f"receiver folder or shipped name ({DEFAULT_MODEL})")
    parser.add_argument("--sdm", default=DEFAULT_SDM, help="the page's SDM-style receiver, or 'none'")
    parser.add_argument("--deep-jscc", default=DEFAULT_DEEP_JSCC, help="the page's Deep JSCC model, or 'none'")
    parser.add_argument("--no-page", action="store_true", help="serve the API only, without the web demo")
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default loopback only)")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--token", default=os.environ.get("GESCO_SERVE_TOKEN"), help="bearer token (or env var)")
    parser.add_argument("--max-batch", type=int, default=8, help="requests regenerated together at most")
    parser.add_argument("--max-wait-ms", type=float, default=10.0, help="wait for batch mates this long at most")
    parser.add_argument("--max-queue", type=int, default=64, help="waiting requests at most; beyond, 503")
    parser.add_argument("--max-body-bytes", type=int, default=8 * 2**20, help="larger bodies are answered 413")
    parser.add_argument(
        "--sigma-source",
        choices=("channel", "blind"),
        default="channel",
        help="the noise level the network is told: as the message reports it, or estimated",
    )
    parser.add_argument("--map-denoiser", choices=MAP_DENOISER_NAMES, default=None, help="default: the model's own")
    add_sampler_options(parser)
    add_backend_options(parser)
    parser.add_argument("--log-level", choices=("debug", "info", "warning"), default="info")
    parser.set_defaults(func=run)


def _optional(name: str, loader):
    return None if name.lower() == "none" else loader(name)


def run(args: argparse.Namespace) -> int:
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError as err:
        raise MissingExtraError(f"gesco serve needs {err.name}: pip install 'gesco[serve]'") from None
    import logging

    from gesco.baselines.deep_jscc import DeepJSCC
    from gesco.cli.backend_options import apply_backend, backend_record, backend_sampler, check_backend_options
    from gesco.cli.options import require_positive, sampler_of
    from gesco.pretrained import resolve
    from gesco.receiver.pipeline import DiffusionReceiver
    from gesco.serve.app import ServeSettings, build_app
    from gesco.serve.batching import Batcher, BatchSettings
    from gesco.serve.demo_jobs import DemoRunner

    require_positive(args, "max_batch", "max_queue", "max_body_bytes")
    if not 0 <= args.port < 65536:
        raise ValueError(f"--port must be 0..65535, got {args.port}")
    check_backend_options(args)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    log = logging.getLogger("gesco.serve")
    receiver = apply_backend(args, DiffusionReceiver.from_pretrained(resolve(args.model)))
    settings = BatchSettings(max_batch=args.max_batch, max_wait_s=args.max_wait_ms / 1000, max_queue=args.max_queue)
    batcher = Batcher(
        receiver,
        sampler=backend_sampler(args, sampler_of(args, receiver.config.sampler)),
        map_denoiser=args.map_denoiser,
        sigma_source=args.sigma_source,
        settings=settings,
    )
    demo = None
    if not args.no_page:
        demo = DemoRunner(
            batcher,
            sdm=_optional(args.sdm, lambda name: apply_backend(args, DiffusionReceiver.from_pretrained(resolve(name)))),
            deep_jscc=_optional(args.deep_jscc, lambda name: DeepJSCC.from_pretrained(resolve(name))),
        )
    app = build_app(
        batcher,
        demo=demo,
        settings=ServeSettings(token=args.token or None, max_body_bytes=args.max_body_bytes, model=args.model),
    )
    sampler = batcher.sampler
    runtime = backend_record(args, sampler)
    log.info(
        "serving %s (%s, %dx%d) with %s %d steps, guidance %g, UNet on %s %s; batches of up to %d, queue %d; token %s",
        args.model,
        receiver.table.name,
        *receiver.config.image_size,
        sampler.sampler,
        sampler.steps,
        sampler.guidance,
        runtime["backend"],
        runtime["precision"],
        settings.max_batch,
        settings.max_queue,
        "required" if args.token else "not required",
    )
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.token:
        log.warning("listening on %s without a token: anyone who reaches this address can use the receiver", args.host)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=120, lifespan="on"
    )
    # On SIGTERM / SIGINT uvicorn stops accepting, answers the requests in flight, runs the app's shutdown (which
    # drains the batcher), then re-raises the signal: the exit status says how the server was stopped.
    uvicorn.Server(config).run()
    return 0
