"""Tools around the server that are not the server: the end-to-end demo and the in-process
simulator behind ``ldp demo`` and ``ldp simulate``.

They ship in the server distribution but outside the ``ldpserver`` package, and their extra
dependencies (``httpx`` for the demo's devices, ``matplotlib`` for its report) come with the
``demo`` extra: ``pip install 'ldp-analytics-server[demo]'``. The server itself never imports
this package.
"""
