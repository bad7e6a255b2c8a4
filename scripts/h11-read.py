#!/usr/bin/python3
"""Reads HTTP/1.1 requests from stdin with h11 (the parser of Python's ASGI servers, not swift-nio's or llhttp)
and prints, as one JSON line, what a Python upstream would see: each request's method, target, headers (names lower
case, in order), body (as Latin-1 text) and trailers, then whether bytes were left over or the stream was malformed."""
import json
import sys

import h11


def main():
    data = sys.stdin.buffer.read()
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(data)
    connection.receive_data(b"")
    requests = []
    report = {"requests": requests, "error": None, "leftover": 0}
    current = None
    while True:
        try:
            event = connection.next_event()
        except h11.RemoteProtocolError as error:
            report["error"] = str(error)
            break
        if isinstance(event, h11.Request):
            current = {
                "method": event.method.decode("latin-1"),
                "target": event.target.decode("latin-1"),
                "headers": [[name.decode("latin-1"), value.decode("latin-1")] for name, value in event.headers],
                "body": "",
                "trailers": [],
            }
        elif isinstance(event, h11.Data):
            current["body"] += event.data.decode("latin-1")
        elif isinstance(event, h11.EndOfMessage):
            current["trailers"] = [[name.decode("latin-1"), value.decode("latin-1")] for name, value in event.headers]
            requests.append(current)
            current = None
            # Answer it, then read the next request on the same connection, as a keep-alive server would.
            connection.send(h11.Response(status_code=204, headers=[]))
            connection.send(h11.EndOfMessage())
            if connection.our_state is not h11.IDLE:
                try:
                    connection.start_next_cycle()
                except h11.LocalProtocolError:
                    break  # the request closes the connection (HTTP/1.0, Connection: close)
        elif event is h11.NEED_DATA or isinstance(event, h11.ConnectionClosed) or event is h11.PAUSED:
            break
    if current is not None:
        report["error"] = report["error"] or "a request did not end"
    report["leftover"] = len(connection.trailing_data[0])
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
