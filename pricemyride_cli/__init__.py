"""The command line, on top of every layer: ``pricemyride`` (``python -m pricemyride_cli``).

It parses, checks the services a command needs, calls one service function and turns errors into one
line and a sysexits code. It may import every package; nothing imports it (an import-linter contract).
"""
