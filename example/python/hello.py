"""Hello in Python for a plain `wasi:http/proxy` world: the Python guest a new
user writes first, and the one the benchmarks measure."""

from componentize_py_types import Ok
from wit_world import exports
from wit_world.imports.types import (
    Fields,
    IncomingRequest,
    OutgoingBody,
    OutgoingResponse,
    ResponseOutparam,
)

BODY = b"Hello from rvm\n"


class IncomingHandler(exports.IncomingHandler):
    def handle(self, request: IncomingRequest, response_out: ResponseOutparam) -> None:
        headers = Fields.from_list([
            ("content-type", b"text/plain"),
            ("content-length", str(len(BODY)).encode()),
        ])
        response = OutgoingResponse(headers)
        body = response.body()
        ResponseOutparam.set(response_out, Ok(response))
        with body.write() as stream:
            stream.blocking_write_and_flush(BODY)
        OutgoingBody.finish(body, None)
