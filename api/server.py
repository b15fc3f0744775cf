"""Run the API under uvicorn on settings.api_host:api_port, with internflow's logging."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from runtime.errors import ensure_port_free
from runtime.logging import configure_logging
from runtime.settings import Settings


def serve(settings: Settings) -> None:
    """Serve until SIGINT/SIGTERM. StackError if the port is taken (naming the setting)."""
    ensure_port_free(settings.api_host, settings.api_port, "INTERNFLOW_API_PORT")
    uvicorn.run(
        create_app(settings),
        host=settings.api_host,
        port=settings.api_port,
        proxy_headers=True,
        log_level=settings.log_level,
        access_log=False,
    )


def main() -> None:
    settings = Settings()
    configure_logging(settings)
    serve(settings)


if __name__ == "__main__":
    main()
