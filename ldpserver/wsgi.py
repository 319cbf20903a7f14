"""WSGI entry point for gunicorn: ``gunicorn -w 2 ldpserver.wsgi:app`` (settings from the environment).

After building the app, the garbage collector is tuned for the server (``ldpserver/heap.py``):
the startup heap frozen, young collections rarer.
"""

from ldpserver.app import create_app
from ldpserver.heap import settle_heap

app = create_app()
settle_heap()
