"""A running service's methods, through gRPC server reflection (grpcio-reflection's client).

The service is the user's, but what it answers is treated as untrusted: every call has a deadline,
messages are capped, and names that are not protobuf identifiers are left out, never written anywhere.
"""

from __future__ import annotations

import collections
import re
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from perfgate.errors import ToolError

CALL_TIMEOUT_S = 5.0
MAX_MESSAGE_BYTES = 8 << 20
MAX_SERVICES = 64
MAX_FIELDS = 32
INFRASTRUCTURE = ("grpc.reflection.", "grpc.health.", "grpc.channelz.")  # served by the framework, not the app
SERVICE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
INSTALL_HINT = "pip install 'perfgate[init]' (grpcio and grpcio-reflection)"


@dataclass(frozen=True)
class Method:
    service: str
    name: str
    request_type: str
    streaming: bool
    request: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))  # zero values, field by field

    @property
    def call(self) -> str:
        return f"{self.service}/{self.name}"


@dataclass(frozen=True)
class Reflected:
    methods: tuple[Method, ...]  # the application's methods, unary first
    skipped: tuple[str, ...] = ()  # what was left out and why


def list_methods(address: str, *, timeout_s: float = CALL_TIMEOUT_S) -> Reflected:
    try:
        import grpc
        from google.protobuf.descriptor_pool import DescriptorPool
        from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
    except ImportError as error:
        raise ToolError(f"perfgate init needs gRPC reflection support ({error.name} is missing)",
                        hint=INSTALL_HINT) from error
    _check_listening(address, timeout_s)
    options = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES), ("grpc.enable_http_proxy", 0)]
    channel = grpc.insecure_channel(address, options=options)
    try:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError as error:
            raise ToolError(f"{address}: no gRPC server answered within {timeout_s:g} s",
                            hint="start the service first, and pass its gRPC address (host:port)") from error
        database = ProtoReflectionDescriptorDatabase(grpc.intercept_channel(channel, _deadline(grpc, timeout_s)))
        return _methods(address, database, DescriptorPool(database), grpc)
    finally:
        channel.close()


def _check_listening(address: str, timeout_s: float) -> None:
    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
            pass
    except OSError as error:
        raise ToolError(f"{address}: nothing accepts connections there ({error.strerror or error})",
                        hint="start the service first, and pass its gRPC address (host:port)") from error


def _methods(address: str, database: Any, pool: Any, grpc: Any) -> Reflected:
    try:
        names = list(database.get_services())
    except grpc.RpcError as error:
        code = error.code()
        if code == grpc.StatusCode.UNIMPLEMENTED:
            raise ToolError(f"{address} does not serve gRPC server reflection (grpc.reflection.v1alpha)",
                            hint="register it in the service (Go: reflection.Register(server)), or pass --call "
                            "package.Service/Method") from error
        raise ToolError(f"{address}: server reflection failed: {code.name}: {_short(error.details())}") from error
    methods, skipped = [], []
    for name in names[:MAX_SERVICES]:
        if not isinstance(name, str) or not SERVICE_NAME.match(name):
            skipped.append(f"a service named {name!r}: not a protobuf name")
        elif not name.startswith(INFRASTRUCTURE):
            found, problem = _service_methods(name, pool, grpc)
            methods.extend(found)
            skipped.extend([problem] if problem else [])
    if len(names) > MAX_SERVICES:
        skipped.append(f"{len(names) - MAX_SERVICES} services past the first {MAX_SERVICES}")
    methods.sort(key=lambda m: (m.streaming, m.call))
    return Reflected(tuple(methods), tuple(skipped))


def _service_methods(name: str, pool: Any, grpc: Any) -> tuple[list[Method], str | None]:
    try:
        service = pool.FindServiceByName(name)
    except (KeyError, TypeError, AssertionError, grpc.RpcError) as error:
        return [], f"service {name}: its descriptor could not be read ({type(error).__name__})"
    methods = []
    for method in service.methods:
        if IDENTIFIER.match(method.name):
            streaming = bool(method.client_streaming or method.server_streaming)
            methods.append(Method(name, method.name, method.input_type.full_name, streaming,
                                  MappingProxyType(zero_message(method.input_type))))
    return methods, None


def zero_message(descriptor: Any) -> dict[str, Any]:
    """The request with every top-level field at its proto3 zero value: what the server gets from `{}`,
    spelled out so the user sees what to fill in."""
    from google.protobuf.descriptor import FieldDescriptor as F

    zeros = {F.CPPTYPE_STRING: "", F.CPPTYPE_BOOL: False, F.CPPTYPE_MESSAGE: {}}
    message: dict[str, Any] = {}
    for item in list(descriptor.fields)[:MAX_FIELDS]:
        if not IDENTIFIER.match(item.name):
            continue
        if item.message_type is not None and item.message_type.GetOptions().map_entry:
            message[item.name] = {}
        elif _is_repeated(item):
            message[item.name] = []
        elif item.cpp_type == F.CPPTYPE_ENUM:
            message[item.name] = item.enum_type.values[0].name if item.enum_type.values else 0
        else:
            message[item.name] = zeros.get(item.cpp_type, 0)
    return message


def _is_repeated(item: Any) -> bool:
    repeated = getattr(item, "is_repeated", None)  # protobuf >= 5.27; `label` is deprecated there
    return bool(repeated) if repeated is not None else item.label == item.LABEL_REPEATED


def _short(text: Any, limit: int = 200) -> str:
    shown = "".join(c if c.isprintable() else "?" for c in str(text or ""))
    return shown if len(shown) <= limit else shown[:limit] + "..."


def _deadline(grpc: Any, timeout_s: float) -> Any:
    """An interceptor giving every reflection call a deadline: the library's client sets none."""

    class Details(collections.namedtuple("Details", ("method", "timeout", "metadata", "credentials",
                                                     "wait_for_ready", "compression")), grpc.ClientCallDetails):
        pass

    class Deadline(grpc.StreamStreamClientInterceptor):
        def intercept_stream_stream(self, continuation: Callable, details: Any, requests: Any) -> Any:
            bounded = Details(details.method, timeout_s, details.metadata, details.credentials,
                              getattr(details, "wait_for_ready", None), getattr(details, "compression", None))
            return continuation(bounded, requests)

    return Deadline()
