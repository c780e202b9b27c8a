"""Models: from labelled listings to a registered, gated champion.

``data`` (training rows, splits), ``cleaning`` (which listings are labels), ``features`` and ``model``
(the XGBoost price model and its 80% range), ``metrics`` and ``evaluate`` (the honest report),
``train`` (fit, log, register as challenger), ``gate`` and ``promotion`` (the one rule and the one place
that promotes), ``registry`` and ``contracts`` (MLflow), ``flow`` and ``deployment`` (the Prefect
retrain flow), ``predict`` and ``rescore`` (batch pricing through ``pricing``).
"""
