"""The scoring service: a faust app (``app``) whose loop turns ``listings`` into stored and published
predictions, batch by batch.

``app`` (the loop and the wiring) → ``delivery`` (the one owner of the batch in flight) → ``outputs``
(its Kafka transactions) → ``publishing`` (record batches); ``champion`` (the model in use), ``store``
(Postgres), ``scoring`` (the pure steps), ``steps`` and ``metrics`` (where the time goes).
"""
