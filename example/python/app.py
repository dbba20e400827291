"""RVM's example guest in Python, for the RVM service's `rvm` world.

GET /secret     → the application's client secret (`client-secret()`)
POST /echo      → the request body, streamed back as it arrives
GET /hash-all   → for each `url` request header, fetched through outbound HTTP (allowed
                  hosts only), one `url: sha256` line, each sent as soon as it is known
GET /?a=6&b=7   → "secret: <client-secret()>" and "product: 42" (the host multiplies)
"""

import hashlib
from urllib.parse import parse_qs, urlsplit

from componentize_py_types import Err, Ok
from wit_world import exports
from wit_world.imports import host, outgoing_handler
from wit_world.imports.streams import InputStream, OutputStream, StreamError_Closed
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    Method_Get,
    OutgoingBody,
    OutgoingRequest,
    OutgoingResponse,
    ResponseOutparam,
    Scheme_Http,
    Scheme_Https,
)

# The most a stream takes in one blocking write.
WRITE_LIMIT = 4096
READ_SIZE = 65536


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        target = urlsplit(request.path_with_query() or "/")
        if target.path == "/secret":
            respond(response_out, host.client_secret().encode())
        elif target.path == "/echo":
            echo(request, response_out)
        elif target.path == "/hash-all":
            hash_all(request, response_out)
        else:
            query = parse_qs(target.query)
            product = host.multiply(number(query, "a", 6.0), number(query, "b", 7.0))
            body = f"secret: {host.client_secret()}\nproduct: {product:g}\n".encode()
            respond(response_out, body)


def number(query: dict, name: str, default: float) -> float:
    try:
        return float(query[name][0])
    except (KeyError, ValueError):
        return default


def respond(response_out: ResponseOutparam, body: bytes) -> None:
    """A whole plain-text answer."""
    headers = Fields.from_list([
        ("content-type", b"text/plain"),
        ("content-length", str(len(body)).encode()),
    ])
    with streamed(response_out, headers) as stream:
        write_all(stream, body)


class streamed:
    """Starts a response with `headers` and gives its body's stream; the body
    is finished when the block ends."""

    def __init__(self, response_out: ResponseOutparam, headers: Fields) -> None:
        response = OutgoingResponse(headers)
        self.body = response.body()
        ResponseOutparam.set(response_out, Ok(response))

    def __enter__(self) -> OutputStream:
        self.stream = self.body.write()
        return self.stream

    def __exit__(self, *_) -> None:
        self.stream.__exit__(None, None, None)
        OutgoingBody.finish(self.body, None)


def write_all(stream: OutputStream, data: bytes) -> None:
    for start in range(0, len(data), WRITE_LIMIT):
        stream.blocking_write_and_flush(data[start:start + WRITE_LIMIT])


def chunks(stream: InputStream):
    """What `stream` holds, as it arrives, until it ends."""
    while True:
        try:
            yield stream.blocking_read(READ_SIZE)
        except Err as error:
            if isinstance(error.value, StreamError_Closed):
                return
            raise


def echo(request: IncomingRequest, response_out: ResponseOutparam) -> None:
    body = request.consume()
    headers = Fields.from_list([("content-type", b"application/octet-stream")])
    with streamed(response_out, headers) as out, body.stream() as incoming:
        for chunk in chunks(incoming):
            write_all(out, chunk)


def hash_all(request: IncomingRequest, response_out: ResponseOutparam) -> None:
    urls = [url.decode(errors="replace") for url in request.headers().get("url")]
    headers = Fields.from_list([("content-type", b"text/plain")])
    with streamed(response_out, headers) as out:
        for url in urls:
            write_all(out, f"{url}: {sha256_of(url)}\n".encode())


def sha256_of(url: str) -> str:
    """The SHA-256 of what GET `url` answers, or why there is none."""
    target = urlsplit(url)
    if target.scheme not in ("http", "https") or not target.netloc:
        return "error: not an http(s) URL"
    outgoing = OutgoingRequest(Fields())
    outgoing.set_method(Method_Get())
    outgoing.set_scheme(Scheme_Https() if target.scheme == "https" else Scheme_Http())
    outgoing.set_authority(target.netloc)
    outgoing.set_path_with_query((target.path or "/") + (f"?{target.query}" if target.query else ""))
    try:
        future = outgoing_handler.handle(outgoing, None)
        future.subscribe().block()
        answer = future.get()
        if answer is None or isinstance(answer, Err) or isinstance(answer.value, Err):
            code = answer.value.value if answer is not None else "no answer"
            return f"error: {code}"
        response = answer.value.value
    except Err as error:
        return f"error: {error.value}"
    if response.status() != 200:
        return f"error: status {response.status()}"
    digest = hashlib.sha256()
    body = response.consume()
    with body.stream() as incoming:
        for chunk in chunks(incoming):
            digest.update(chunk)
    return digest.hexdigest()
