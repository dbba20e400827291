"""The `secret` guest in Python, for the RVM service's `rvm` world: answers with
the application's client secret and a product computed by the host.

GET /?a=6&b=7 → "secret: <client-secret()>" and "product: 42".
"""

from urllib.parse import parse_qs, urlsplit

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports import host
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)


def number(query: dict, name: str, default: float) -> float:
    try:
        return float(query[name][0])
    except (KeyError, ValueError):
        return default


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        query = parse_qs(urlsplit(request.path_with_query() or "/").query)
        product = host.multiply(number(query, "a", 6.0), number(query, "b", 7.0))
        body = f"secret: {host.client_secret()}\nproduct: {product:g}\n".encode()

        headers = Fields.from_list([
            ("content-type", b"text/plain"),
            ("content-length", str(len(body)).encode()),
        ])
        response = OutgoingResponse(headers)
        response_body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with response_body.write() as stream:
            stream.blocking_write_and_flush(body)
        OutgoingBody.finish(response_body, None)
