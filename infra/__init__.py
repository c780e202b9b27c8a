"""The local stack without Docker: Kafka (KRaft, from Maven jars) and Postgres (``services``), the demos
(``demo``, ``demo_drift``) and the failure scenarios (``chaos``). Tools, above the services they start.
"""
