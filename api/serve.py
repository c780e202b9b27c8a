"""How the API is served: Uvicorn (uvloop, httptools), one process; scale it by replicas behind a proxy.

Its metrics and health are on the ops port too (``pricemyride.ops``), as every service's are; the API's own
port answers ``/readyz`` and ``/livez`` without a key and everything else only with one.
"""

from __future__ import annotations

import logging

import uvicorn

from api.app import create_api
from pricemyride.ops import Health, reader_answers, serve_ops
from pricemyride.settings import Settings

log = logging.getLogger(__name__)


def serve(settings: Settings) -> None:
    app = create_api(settings)
    service = app.state.service
    serve_ops(settings, "api", Health({"database": lambda: reader_answers(settings),
                                       "model": lambda: service.champion.model is not None}))  # fmt: skip
    log.info("api: uvicorn on http://%s:%d/ (docs %s)", settings.api_host, settings.api_port,
             "at /docs" if settings.environment == "development" else "off in production")  # fmt: skip
    uvicorn.run(app, host=settings.api_host, port=settings.api_port, loop="uvloop", http="httptools",
                access_log=False, server_header=False, timeout_keep_alive=30, log_config=None)  # fmt: skip
