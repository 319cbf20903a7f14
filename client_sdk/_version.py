"""The version of both distributions (SDK and server): the one place it is written.

``client_sdk/pyproject.toml`` and the server's ``setup.py`` read it from here; the web SDK's
``package.json`` must carry the same string (tests/unit/test_packaging.py checks it).
"""

__version__ = "0.2.0"
