"""Clients for other identities and services share one boto3 session (adapters/aws.py):
botocore's endpoint table and a service's model are loaded once a process, not once a
client (a local worker held four copies, ≈ 7 MB of Python objects each)."""

from __future__ import annotations

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
