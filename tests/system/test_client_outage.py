"""A server that is down loses nothing: the production entry point (``ldp serve``, gunicorn
with two workers) is stopped and started again while the device keeps reporting."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from client_sdk.client import Client, RetryPolicy
from tests.system.test_client_harness import frequency_collection, live_server

pytestmark = pytest.mark.timeout(120)


def test_reports_made_while_the_server_is_down_arrive_after_restart(tmp_path: Path) -> None:
    pytest.importorskip("gunicorn")
    with live_server(tmp_path / "server", mode="gunicorn") as server:
        cid = server.create_collection(frequency_collection())["id"]
        retry = RetryPolicy(base_delay=0.05, max_delay=0.3, request_timeout=3.0)
        with Client(server.url, server.client_key, str(tmp_path / "device"), retry=retry) as client:
            client.config(cid)  # the public config is cached while the server is up
            for i in range(20):
                client.report(cid, i)
            assert client.flush(timeout=10).accepted == 20

            server.stop()
            for i in range(30):
                client.report(cid, i)  # report() never needs the network once the config is cached
            down = client.flush(timeout=1.0)
            assert down.remaining == 30 and down.delivered == 0 and down.timed_out
            assert "Connection refused" in " ".join(down.errors) or "URLError" in " ".join(down.errors)

            # the background flusher keeps trying while the server comes back on the same port
            client.start_background_flush(interval=0.2, timeout=2.0)
            for i in range(10):
                client.report(cid, i)
            server.start()
            while client.pending():  # no deadline of its own: the test's timeout is the only bound
                time.sleep(0.1)
            client.stop_background_flush()
            assert client.pending() == 0
            budget = client.budget(cid)
        summary = server.summary(cid)
        assert summary["reports_accepted"] == 60 == budget.reports_accepted + budget.reports_duplicate
        assert summary["epsilon_total"] == budget.acknowledged == budget.lifetime.spent == 60.0
        assert server.verify(cid)
