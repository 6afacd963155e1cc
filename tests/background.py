"""The real exporter in-process: its own thread and event loop, on 127.0.0.1 port 0 by default."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import httpx

from exporter.config import Config
from exporter.listen import parse_listen_address
from exporter.serving import serve
from exporter.sharding import NO_SHARDING, Shard
from exporter.webconfig import WebConfig
from exporter.wiring import NO_WEB_CONFIG


class BackgroundExporter:
    """The exporter in a thread with its own event loop."""

    def __init__(
        self,
        config: Config,
        listen: str | Sequence[str] = "127.0.0.1:0",
        transport: httpx.AsyncBaseTransport | None = None,
        shard: Shard = NO_SHARDING,
        web_config: WebConfig = NO_WEB_CONFIG,
        telemetry_path: str = "/metrics",
        exporter_metrics: bool = True,
    ) -> None:
        self._shard = shard
        self._web_config = web_config
        self._config = config
        addresses = [listen] if isinstance(listen, str) else listen
        self._listen = [parse_listen_address(address) for address in addresses]
        self._telemetry_path = telemetry_path
        self._exporter_metrics = exporter_metrics
        self._transport = transport
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="onepin-exporter", daemon=True)
        self.url = ""  # the first address's
        self.urls: list[str] = []

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)

        def listening(urls: list[str]) -> None:
            self.url, self.urls = urls[0], urls
            self._ready.set()

        async def main() -> None:
            self._stop = asyncio.Event()
            await serve(
                self._config,
                self._listen,
                self._stop,
                listening,
                self._transport,
                self._shard,
                self._web_config,
                telemetry_path=self._telemetry_path,
                exporter_metrics=self._exporter_metrics,
            )

        try:
            self._loop.run_until_complete(main())
        except BaseException as exc:
            self._error = exc
            self._ready.set()
        finally:
            self._loop.close()

    def start(self, timeout: float = 10.0) -> BackgroundExporter:
        self._thread.start()
        if not self._ready.wait(timeout):
            raise RuntimeError(f"exporter did not start listening within {timeout}s")
        if self._error is not None:
            raise RuntimeError(f"exporter failed to start: {self._error}") from self._error
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._stop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise RuntimeError(f"exporter did not stop within {timeout}s")

    def __enter__(self) -> BackgroundExporter:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
