"""The one pricing path: validated listings in; fair price, 80% range and deal rating out.

Every caller prices through here — the stream workers, batch predict, rescore, the dashboard's form and
the benchmarks' naive baseline. ``pricing.path`` takes ``Listing`` events (the fast path: one vectorised
call of the model's ``price_ranges`` on the listings' fields, no DataFrame); ``pricing.frames`` is the thin
adapter for Craigslist-format DataFrames (each row checked by the event contract first). ``pricing.deal``
turns a price and a range into a rating. It depends on the core (``pricemyride``) only: a model is
anything with ``price_ranges`` (``training.model.PriceModel`` is the one we train).
"""
