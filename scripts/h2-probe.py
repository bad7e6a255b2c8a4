#!/usr/bin/python3
"""A hostile HTTP/2 client for the gateway's tests, on hyper-h2 (Debian's python3-h2): an HTTP/2 implementation
independent of the gateway's swift-nio-http2, so the tests see the server through a parser that is not its own.

It opens many streams at once (by default before reading the server's SETTINGS, so past its concurrency limit, as a
hostile client would; with --paced, as many as the server allows, opening another as each ends), resets every Nth
right after opening it, can send GOAWAY in the middle of the streams, or SIGTERM the
gateway once every stream is open; then it reports, as one JSON object on standard output, what became of every
stream: how many got which status, which the server reset and with which code, what GOAWAY said, and how many were
left without an answer when the connection ended.
"""
import argparse
import json
import os
import selectors
import signal
import socket
import ssl
import struct
import sys
import time

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions


class Connection:
    def __init__(self, args):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.set_alpn_protocols(["h2"])
        raw = socket.create_connection(("127.0.0.1", args.port), timeout=args.timeout)
        self.sock = context.wrap_socket(raw, server_hostname=args.host)
        if self.sock.selected_alpn_protocol() != "h2":
            raise SystemExit("the server did not choose h2 by ALPN")
        self.sock.setblocking(False)
        # Outbound validation off, so --header can send what a hostile client would (a non-ASCII name, say).
        self.h2 = h2.connection.H2Connection(
            h2.config.H2Configuration(
                client_side=True, header_encoding="utf-8", validate_outbound_headers=False, normalize_outbound_headers=False))
        self.h2.initiate_connection()
        self.open = {}  # stream id -> "open" | "ended" | "reset-by-client" | "reset-by-server"
        self.to_open = args.streams
        self.opened = 0
        self.settings_received = False
        self.closed = False
        self.goaway = None
        self.sent_goaway = False
        self.pending = b""

    def peel_goaways(self, data, report):
        """Takes the server's GOAWAY frames out of the byte stream and records them; the rest goes to hyper-h2.

        hyper-h2 closes its side on any GOAWAY, but a graceful one (the server draining) lets the open streams
        finish, and what the server does with them is the point of the test.
        """
        self.pending += data
        forward = b""
        while len(self.pending) >= 9:
            length = int.from_bytes(self.pending[0:3], "big")
            if len(self.pending) < 9 + length:
                break
            frame, self.pending = self.pending[: 9 + length], self.pending[9 + length :]
            if frame[3] == 0x7:
                last_stream_id, error = struct.unpack(">II", frame[9:17])
                name = h2.errors.ErrorCodes(error).name if error in iter(h2.errors.ErrorCodes) else str(error)
                report["goaway"].append({"error": name, "last_stream_id": last_stream_id & 0x7FFFFFFF})
            else:
                forward += frame
        return forward

    def flush(self):
        data = self.h2.data_to_send()
        while data:
            try:
                sent = self.sock.send(data)
                data = data[sent:]
            except (ssl.SSLWantWriteError, BlockingIOError):
                time.sleep(0.001)
            except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
                self.closed = True
                return


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="acme.test")
    parser.add_argument("--path", default="/")
    parser.add_argument("--streams", type=int, default=1, help="streams per connection")
    parser.add_argument("--connections", type=int, default=1)
    parser.add_argument("--reset-every", type=int, default=0, help="reset every Nth stream right after opening it")
    parser.add_argument("--goaway-after", type=int, default=-1, help="send GOAWAY once this many responses have ended")
    parser.add_argument("--sigterm", type=int, default=0, help="the pid to SIGTERM once every stream is open")
    parser.add_argument("--sigterm-delay", type=float, default=0.2)
    parser.add_argument("--header", action="append", default=[], help="NAME:VALUE added to every request, as given (\\xNN escapes allowed)")
    parser.add_argument("--paced", action="store_true", help="keep within the server's SETTINGS_MAX_CONCURRENT_STREAMS")
    parser.add_argument("--timeout", type=float, default=30)
    parser.add_argument("--linger", type=float, default=0, help="once every stream is done, keep the connections open this long, or until the server closes them")
    args = parser.parse_args()

    report = {
        "statuses": {},
        "reset_by_client": 0,
        "reset_by_server": {},
        "goaway": [],
        "unanswered": 0,
        "protocol_errors": [],
    }
    headers = [(":method", "GET"), (":scheme", "https"), (":authority", args.host), (":path", args.path)]
    # Backslash escapes (\x00) let an argument carry what argv cannot.
    headers += [tuple(header.encode().decode("unicode_escape").split(":", 1)) for header in args.header]

    def open_streams(connection):
        """Opens what is left to open: all of it, or (paced) as many as the server's limit allows now."""
        while connection.to_open > 0 and not connection.closed:
            if args.paced:
                in_flight = sum(1 for state in connection.open.values() if state == "open")
                if not connection.settings_received or in_flight >= connection.h2.remote_settings.max_concurrent_streams:
                    return
            stream = connection.h2.get_next_available_stream_id()
            connection.h2.send_headers(stream, headers, end_stream=True)
            connection.open[stream] = "open"
            connection.to_open -= 1
            connection.opened += 1
            if args.reset_every and connection.opened % args.reset_every == 0:
                connection.h2.reset_stream(stream, error_code=h2.errors.ErrorCodes.CANCEL)
                connection.open[stream] = "reset-by-client"
                report["reset_by_client"] += 1

    connections = [Connection(args) for _ in range(args.connections)]
    for connection in connections:
        # Unpaced, everything goes in one write: the server's SETTINGS (and its limit) have not been read yet.
        open_streams(connection)
        connection.flush()

    if args.sigterm:
        time.sleep(args.sigterm_delay)
        os.kill(args.sigterm, signal.SIGTERM)

    selector = selectors.DefaultSelector()
    for connection in connections:
        selector.register(connection.sock, selectors.EVENT_READ, connection)
    ended = 0
    deadline = time.monotonic() + args.timeout

    def waiting(connection):
        return [s for s, state in connection.open.items() if state == "open"]

    def unfinished(connection):
        return not connection.closed and (waiting(connection) or connection.to_open > 0)

    linger_until = None

    def going_on():
        nonlocal linger_until
        if any(unfinished(c) for c in connections):
            return True
        if not args.linger or all(c.closed for c in connections):
            return False
        if linger_until is None:
            linger_until = time.monotonic() + args.linger
            report["lingered_from"] = time.monotonic()
        return time.monotonic() < linger_until

    while time.monotonic() < deadline and going_on():
        for key, _ in selector.select(timeout=0.5):
            connection = key.data
            try:
                data = connection.sock.recv(65536)
            except (ssl.SSLWantReadError, BlockingIOError):
                continue
            except (ConnectionResetError, ssl.SSLError):
                data = b""
            if not data:
                connection.closed = True
                report["closed_by_server"] = report.get("closed_by_server", 0) + 1
                if "lingered_from" in report:
                    report["closed_after_linger_s"] = round(time.monotonic() - report["lingered_from"], 2)
                selector.unregister(connection.sock)
                continue
            data = connection.peel_goaways(data, report)
            try:
                events = connection.h2.receive_data(data)
            except h2.exceptions.ProtocolError as error:
                report["protocol_errors"].append(repr(error))
                connection.closed = True
                selector.unregister(connection.sock)
                continue
            for event in events:
                stream = getattr(event, "stream_id", None)
                if isinstance(event, h2.events.ResponseReceived):
                    status = dict(event.headers).get(":status", "?")
                    report["statuses"][status] = report["statuses"].get(status, 0) + 1
                elif isinstance(event, h2.events.DataReceived):
                    connection.h2.acknowledge_received_data(event.flow_controlled_length, stream)
                elif isinstance(event, h2.events.StreamEnded):
                    if connection.open.get(stream) == "open":
                        connection.open[stream] = "ended"
                        ended += 1
                elif isinstance(event, h2.events.StreamReset):
                    if connection.open.get(stream) == "open":
                        code = h2.errors.ErrorCodes(event.error_code).name if event.error_code in iter(h2.errors.ErrorCodes) else str(event.error_code)
                        report["reset_by_server"][code] = report["reset_by_server"].get(code, 0) + 1
                        connection.open[stream] = "reset-by-server"
                elif isinstance(event, h2.events.RemoteSettingsChanged):
                    connection.settings_received = True
            if args.goaway_after >= 0 and ended >= args.goaway_after and not connection.sent_goaway:
                # Written as raw bytes: hyper-h2 would stop reading the connection after its own GOAWAY, and the
                # point is to see what the server does with the streams already open.
                connection.flush()
                goaway = struct.pack(">I", 8)[1:] + bytes([0x7, 0]) + struct.pack(">III", 0, 0, h2.errors.ErrorCodes.NO_ERROR)
                connection.sock.setblocking(True)
                connection.sock.sendall(goaway)
                connection.sock.setblocking(False)
                connection.sent_goaway = True
            if not connection.sent_goaway and not report["goaway"]:
                open_streams(connection)
            connection.flush()

    for connection in connections:
        report["unanswered"] += len(waiting(connection))
        report["never_opened"] = report.get("never_opened", 0) + connection.to_open
        try:
            connection.sock.close()
        except OSError:
            pass
    report["ended"] = ended
    report.pop("lingered_from", None)
    json.dump(report, sys.stdout)
    print()


if __name__ == "__main__":
    main()
