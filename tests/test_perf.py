import gc

import pytest

import netspec


def test_the_collector_is_paused_only_while_netspec_works():
    assert gc.isenabled()
    netspec.analyze(netspec.loads("name: t\ninput: [4]\nlayers:\n  - linear: 2\n", "t.yaml"))
    assert gc.isenabled()
    with pytest.raises(netspec.SpecErrors):
        netspec.analyze(netspec.loads("name: t\ninput: [4]\nlayers:\n  - linear: 0\n", "t.yaml"))
    assert gc.isenabled()


def test_a_caller_that_disabled_the_collector_keeps_it_disabled():
    gc.disable()
    try:
        netspec.analyze(netspec.loads("name: t\ninput: [4]\nlayers:\n  - linear: 2\n", "t.yaml"))
        assert not gc.isenabled()
    finally:
        gc.enable()
