"""The retrain service: turns each ``RetrainRequest`` from the drift worker into one run of the ``retrain``
flow (in this process, or on the Prefect deployment), with retries, and records every failure.

It is a long-running Kafka consumer beside the scoring and drift workers; the flow it runs lives in
``training.flow``, and the flow's gate promotes through ``training.promotion`` (one place).
"""
