"""The local stack without Docker, above the services it starts.

``services`` (processes, PID files, ports, Postgres, the Kafka jars) ← ``kafka_cluster``, ``prometheus`` ←
``stack`` (``python -m infra up | down | status``); ``harness`` (isolated worlds, spawning, a real MLflow
server, row queries: what demos, chaos, benchmarks and tests share) ← ``demo``, ``demo_drift``, ``chaos``
← ``chaos_cluster`` ← ``chaos_run`` (``make chaos``). No module imports one that imports it.
"""
