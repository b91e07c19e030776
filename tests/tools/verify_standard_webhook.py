"""A webhook receiver's check, done with the Standard Webhooks reference library.

Reads one JSON object on stdin: {"secret": "whsec_...", "headers": {...}, "body": "..."}, the
secret a receiver was given and one request exactly as it arrived. Verifies it as a receiver
would (signature and timestamp tolerance) and prints the parsed document's "type". Exits 1 with
the library's reason when the request does not verify.
"""

import json
import sys

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


def main() -> int:
    request = json.load(sys.stdin)
    headers = {name.lower(): value for name, value in request["headers"].items()}
    try:
        document = Webhook(request["secret"]).verify(request["body"], headers)
    except WebhookVerificationError as err:
        print(f"not verified: {err}", file=sys.stderr)
        return 1
    print(document["type"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
