"""Ingestion holds the cyclic collector off for a batch and always gives it back."""

import gc

import pytest

from amazon_pilot.platform.collector import collection_paused


@pytest.fixture(autouse=True)
def collector_on():
    was = gc.isenabled()
    gc.enable()
    yield
    if not was:
        gc.disable()


def test_paused_inside_and_back_after():
    with collection_paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_back_after_an_error():
    with pytest.raises(RuntimeError), collection_paused():
        raise RuntimeError("a batch failed")
    assert gc.isenabled()


def test_nested_leaves_it_to_the_outermost():
    with collection_paused():
        with collection_paused():
            pass
        assert not gc.isenabled()  # the inner one did not resume it early
    assert gc.isenabled()


def test_a_process_that_turned_it_off_keeps_it_off():
    gc.disable()
    with collection_paused():
        pass
    assert not gc.isenabled()
