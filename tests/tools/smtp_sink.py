"""An SMTP server for the integration tests (aiosmtpd): accepts mail on 127.0.0.1 and writes
each message it accepts to a JSON file in a directory, with its envelope, its headers decoded
and its text body, so a test reads what a mail client would show.

    python smtp_sink.py --port 2525 --dir /tmp/mails [--reject vera@customer.test]

Recipients named with --reject are refused with a permanent 550, as a server refuses an
unknown mailbox. Prints "ready" once it listens; runs until killed.
"""

import argparse
import email
import email.policy
import json
import os
import threading

from aiosmtpd.controller import Controller


class Sink:
    def __init__(self, directory, rejected):
        self.directory = directory
        self.rejected = {address.lower() for address in rejected}
        self.count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address.lower() in self.rejected:
            return "550 5.1.1 No such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        body = message.get_body(preferencelist=("plain",))
        record = {
            "mail_from": envelope.mail_from,
            "rcpt_tos": envelope.rcpt_tos,
            "headers": {name: str(value) for name, value in message.items()},
            "body": body.get_content() if body is not None else "",
            "raw": envelope.content.decode("utf-8", "replace"),
        }
        with self.lock:
            self.count += 1
            name = f"{self.count:04d}.json"
        path = os.path.join(self.directory, name)
        # Written aside and renamed, so a reader never sees half a message.
        with open(path + ".part", "w", encoding="utf-8") as out:
            json.dump(record, out)
        os.replace(path + ".part", path)
        return "250 Message accepted for delivery"


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dir", required=True)
    parser.add_argument("--reject", action="append", default=[])
    args = parser.parse_args()
    controller = Controller(Sink(args.dir, args.reject), hostname="127.0.0.1", port=args.port)
    controller.start()
    print("ready", flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
