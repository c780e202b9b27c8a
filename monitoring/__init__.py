"""The drift service: a faust app (``app``) that cuts ``price-predictions`` into windows, computes drift
with Evidently (``drift``) against the champion's reference and requests a retrain per drift episode.
"""
