"""What a long-lived process holds does not grow with the work it does: clients for other
identities share one boto3 session (adapters/aws.py: botocore's endpoint table and a
service's model load once a process, not once a client; a local worker held four copies,
≈ 7 MB of Python objects each), and a worker loads every job's module before its heap is
frozen, whichever jobs it then runs."""

from __future__ import annotations

import subprocess
import sys
import tracemalloc

from amazon_pilot.adapters import aws

_ENDPOINT = "http://127.0.0.1:9"  # never called: making a client sends nothing


def test_a_client_for_another_identity_does_not_load_botocore_data_again() -> None:
    aws.reset_clients()
    try:
        aws._new_client("sqs", ("AKIDFIRST", "secret", None), _ENDPOINT, "us-east-1", False)
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            clients = [aws._new_client("sqs", (f"AKIDOTHER{i}", "secret", "token"), _ENDPOINT,
                                       "us-east-1", i % 2 == 0) for i in range(4)]
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        # each client still signs as its own identity
        keys = {c._request_signer._credentials.access_key for c in clients}
        assert keys == {f"AKIDOTHER{i}" for i in range(4)}
        assert grown < 4 * 2**20, f"four more clients held {grown / 2**20:.1f} MB"
    finally:
        aws.reset_clients()


def test_a_worker_loads_every_job_it_may_run_before_its_first_message() -> None:
    # in a fresh interpreter: load_all imports each job's module and finds each function
    probe = ("import sys; from amazon_pilot.platform import jobs; jobs.load_all();"
             " missing = [t for t, target in jobs.JOBS.items()"
             " if not callable(getattr(sys.modules.get(target.split(':')[0]),"
             " target.split(':')[1], None))]; print(missing)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"
