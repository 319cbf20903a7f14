"""The ``ldp`` command line.

ldp migrate [--revision head]        upgrade the database (DATABASE_URL) to the migrations' head
ldp downgrade REVISION --yes         downgrade (e.g. to "base": drops everything)
ldp keys create --role ROLE [--name] [--collections A,B] [--max-devices N] [--enrol-per-hour N]
                                     create an API key (printed once), optionally scoped/limited
ldp keys list                        list keys (never the secrets)
ldp keys revoke ID                   revoke a key
ldp audit verify [--collection ID]   check the ledger's hash chains offline; exit 1 on tampering
ldp audit export [--format csv|json|jsonl] [--output FILE]   the ledger, to a file or stdout
ldp collections create --file FILE   create collection(s) from YAML/JSON (same checks as the API)
ldp collections list [--json]        list collections
ldp reports purge [--dry-run]        delete raw reports past retention (and past their epoch window)
ldp serve [--host --port --workers]  run the API with gunicorn (gunicorn.conf.py); --dev: werkzeug
ldp release --collection ID          close and release epochs now
ldp scheduler [--once]               release every due epoch, in a loop
ldp simulate --config F --data CSV --column C   a collection's devices + estimates in process
ldp demo                             the end-to-end demonstration (server, devices, releases, report)
"""

from __future__ import annotations

from ldpserver.cli import audit, collections, database, keys, serve, tools
from ldpserver.cli.common import main

__all__ = ["audit", "collections", "database", "keys", "main", "serve", "tools"]

if __name__ == "__main__":
    main()
