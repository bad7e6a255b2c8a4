#!/usr/bin/python3
"""A local SMTP sink for trying account e-mail: prints each message's headers and decoded text part.

Run with Debian's own interpreter (python3-aiosmtpd, installed by scripts/install-deps.sh):

    /usr/bin/python3 scripts/mail-sink.py 127.0.0.1:2525

and point config/gatehouse.yaml at it:  email: {smtp: "smtp://127.0.0.1:2525", from: "Demo <no-reply@demo.localhost>"}
"""
import asyncio
import email
import email.policy
import sys

from aiosmtpd.controller import Controller


class Printer:
    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        print("-" * 72)
        for name in ("From", "To", "Subject", "Date", "Message-ID"):
            print(f"{name}: {message[name]}")
        text = message.get_body(preferencelist=("plain",))
        print()
        print(text.get_content().replace("\r\n", "\n") if text else "(no text part)")
        sys.stdout.flush()
        return "250 OK"


def main():
    host, _, port = (sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1:2525").rpartition(":")
    controller = Controller(Printer(), hostname=host or "127.0.0.1", port=int(port))
    controller.start()
    print(f"mail sink listening on {controller.hostname}:{controller.port}; Ctrl-C stops it", flush=True)
    try:
        asyncio.get_event_loop().run_forever()
    except KeyboardInterrupt:
        pass
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
