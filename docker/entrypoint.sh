#!/bin/sh
# Container entry point of the LDP server (also runs as is outside Docker).
#
#   1. `ldp migrate` (DATABASE_URL), retried while the database is not reachable yet;
#   2. `exec gunicorn -c gunicorn.conf.py ldpserver.wsgi:app`: exec, so gunicorn becomes this
#      process (PID 1 in a container) and receives SIGTERM directly for a graceful shutdown.
#
# With arguments, runs them instead of gunicorn after migrating (e.g. `ldp keys create
# --role admin`, or `ldp scheduler` with LDP_SKIP_MIGRATE=1).
#
# Environment: DATABASE_URL and the LDP_* settings (ldpserver/config.py), gunicorn's
# (gunicorn.conf.py: LDP_BIND / PORT, WEB_CONCURRENCY, LDP_WORKER_TIMEOUT, ...), and
#   LDP_APP_DIR            where gunicorn.conf.py is (default: this script's parent directory;
#                          without one there, the copy inside the installed server package)
#   GUNICORN_CONFIG        another gunicorn config file
#   LDP_WSGI_APP           the WSGI application (default ldpserver.wsgi:app)
#   LDP_SKIP_MIGRATE=1     do not migrate (another container does)
#   LDP_MIGRATE_ATTEMPTS   how many times to try `ldp migrate` (default 30, 2 s apart)
set -eu

APP_DIR="${LDP_APP_DIR:-$(cd "$(dirname "$0")/.." && pwd)}"
CONFIG="${GUNICORN_CONFIG:-$APP_DIR/gunicorn.conf.py}"
if [ -z "${GUNICORN_CONFIG:-}" ] && [ ! -f "$CONFIG" ]; then
    # an installed server wheel carries gunicorn.conf.py inside the package (setup.py)
    CONFIG="$(python -c 'import pathlib, ldpserver; print(pathlib.Path(ldpserver.__file__).parent / "gunicorn.conf.py")')"
fi
WSGI_APP="${LDP_WSGI_APP:-ldpserver.wsgi:app}"

if [ "${LDP_SKIP_MIGRATE:-0}" != "1" ]; then
    attempt=1
    attempts="${LDP_MIGRATE_ATTEMPTS:-30}"
    until ldp migrate; do
        if [ "$attempt" -ge "$attempts" ]; then
            echo "entrypoint: ldp migrate failed $attempt times; giving up" >&2
            exit 1
        fi
        echo "entrypoint: ldp migrate failed (database not reachable yet?); retry $attempt/$attempts in 2 s" >&2
        attempt=$((attempt + 1))
        sleep 2
    done
fi

if [ "$#" -gt 0 ]; then
    exec "$@"
fi
exec gunicorn --config "$CONFIG" "$WSGI_APP"
