"""The scoring service: a faust app (``app``) whose loop turns ``listings`` into stored and published
predictions, batch by batch (``scoring`` for the pure steps, ``publishing`` for record batches).
"""
