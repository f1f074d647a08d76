"""aRPC errors: one root (`amnode.AmnodeError`) and one meaning of "canceled"."""

from __future__ import annotations

import inspect

import pytest
from helpers.rpc import new_source

import amnode.machine as am
from amnode import rpc
from amnode.rpc.addr import parse_addr
from amnode.rpc.errors import ErrorCode, error_from_wire
from amnode.rpc.retry import RetryPolicy


def test_every_rpc_error_derives_from_amnode_error() -> None:
    classes = [obj for name in rpc.__all__
               if inspect.isclass(obj := getattr(rpc, name)) and issubclass(obj, BaseException)]
    assert len(classes) >= 10
    for cls in classes:
        assert issubclass(cls, am.AmnodeError), cls


def test_rpc_canceled_is_the_machine_canceled_error() -> None:
    err = error_from_wire(ErrorCode.CANCELED, "server stopping")
    assert isinstance(err, rpc.CanceledError) and isinstance(err, rpc.RpcError)
    with pytest.raises(am.CanceledError, match="server stopping"):
        raise err
    assert issubclass(rpc.CanceledError, am.CanceledError)


def test_configuration_errors_keep_their_builtin_bases() -> None:
    with pytest.raises(rpc.RpcConfigError):
        parse_addr("no-port")
    with pytest.raises(ValueError):
        RetryPolicy(factor=0.5)
    with pytest.raises(am.AmnodeError):
        rpc.Mux(None)
    with pytest.raises(TypeError):
        rpc.register_args(int)  # type: ignore[type-var]
    assert issubclass(rpc.ListenError, ConnectionError)


async def test_listen_failure_is_a_listen_error() -> None:
    src = new_source()
    first = rpc.Server(src)
    await first.start()
    second = rpc.Server(src, first.addr, name="second")
    try:
        with pytest.raises(rpc.ListenError):
            await second.start()
    finally:
        await second.stop(dispose=True)
        await first.stop(dispose=True)
