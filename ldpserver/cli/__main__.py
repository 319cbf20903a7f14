"""``python -m ldpserver.cli``: the ``ldp`` command."""

from ldpserver.cli import main

main()
