"""Run the service: `python -m service` (settings from MICROGAN_* variables or .env).

MICROGAN_MODELS_DIR=models_store MICROGAN_PORT=8000 python -m service
"""

from __future__ import annotations

import logging

import uvicorn

from service.main import create_app
from service.settings import Settings


def main() -> None:
    settings = Settings()
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # An open event stream (GET /train/{id}/events) would otherwise hold a shutdown until its job ends.
    uvicorn.run(
        create_app(settings),
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        timeout_graceful_shutdown=5,
        server_header=False,  # no version banner
    )


if __name__ == "__main__":
    main()
