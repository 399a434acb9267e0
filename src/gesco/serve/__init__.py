"""``gesco serve``: the receiver as a network service (optional extra ``gesco[serve]``: FastAPI + uvicorn).

- :mod:`gesco.serve.wire`: the versioned binary message a transmitter process sends (no web dependency);
- :mod:`gesco.serve.batching`: a bounded queue that batches concurrent requests through one receiver;
- :mod:`gesco.serve.app`: the FastAPI application (receive, health, metrics, the web demo page);
- :mod:`gesco.serve.demo_jobs`: the page's transmissions, run in the background with their progress;
- :mod:`gesco.serve.client`: what ``gesco send`` does: map -> payload -> channel -> message -> server.
"""
