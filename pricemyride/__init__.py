"""The core, at the bottom of every layer: what all PriceMyRide processes share.

``settings`` (one Settings object, the drift ``policy`` nested in it); the listing contract in ``rules``
(each field's rule, declared once) ← ``listing`` (the model and its JSON Schema) ← ``parsing`` (raw bytes →
Listing, or the reason); ``events`` (Prediction, RetrainRequest, ModelUpdate); ``storage`` (the Postgres
schema and writes), ``kafka``/``faustapp``/``topics`` (clients from Settings), ``access`` (Kafka principals
and ACLs), ``datafile`` (Craigslist files), ``generator`` (the built-in listing source), ``reachability``,
``retry``, ``process`` and ``errors``. It imports no other package of the project.
"""
