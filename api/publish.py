"""``?publish=true``: the API as the site's producer. The listing goes on the site's own topic
(``listings.<site>``), keyed by its id, so the stream — not the API — stays the record of what was listed,
and the workers take its source from the topic as for any listing the site sends itself."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer

from pricemyride.errors import PriceMyRideError
from pricemyride.kafka import aiokafka_options
from pricemyride.listing import Listing
from pricemyride.settings import Settings
from pricemyride.topics import SiteTopics
from pricing.path import listing_json

SEND_TIMEOUT_S = 10.0


class Publisher:
    """One idempotent producer for the process, started on first use."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.producer: AIOKafkaProducer | None = None
        self.starting = asyncio.Lock()

    async def _started(self) -> AIOKafkaProducer:
        async with self.starting:
            if self.producer is None:
                producer = AIOKafkaProducer(**aiokafka_options(self.settings), enable_idempotence=True, acks="all",
                                            client_id="pricemyride-api")  # fmt: skip
                await producer.start()
                self.producer = producer
        return self.producer

    async def publish(self, listing: Listing) -> str:
        """Send ``listing`` and wait for the brokers' acknowledgement; the topic it went to."""
        topic = f"{SiteTopics.of(self.settings).listings}.{listing.source}"
        try:
            producer = await self._started()
            await asyncio.wait_for(producer.send_and_wait(topic, listing_json(listing).encode(),
                                                          key=listing.id.encode()), SEND_TIMEOUT_S)  # fmt: skip
        except Exception as exc:  # noqa: BLE001 - answered as 503 with the reason
            why = f"{type(exc).__name__}: {str(exc)[:200]}"
            raise PriceMyRideError(f"publish: expected {topic} to take the listing (`pricemyride add-site "
                                   f"{listing.source}`), got {why}") from None  # fmt: skip
        return topic

    async def stop(self) -> None:
        if self.producer is not None:
            await self.producer.stop()
