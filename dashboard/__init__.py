"""The analysts' Dash app: live prices and deal ratings, drift, model history, a valuation form and dead
letters; it reads Postgres through the read-only role and the registry through ``registry``.
"""
