"""The valuation API: a listing site prices a listing over HTTP before it publishes it (``pricemyride api``)."""
