"""Listing sources: ``replay`` sends a Craigslist file or the built-in generator to ``listings`` as a site
would (dirt included); ``fit_generator`` fits the generator's parameters from a real file (aggregates only).
"""
