"""moto server as `moto_server` starts it, with DynamoDB and DynamoDB Streams requests served
one at a time.

Why: moto's DynamoDB backend is not safe under concurrent requests. TransactWriteItems takes a
deep copy of the whole table before it writes and puts that copy back when the transaction is
cancelled (a failed condition, as every fenced write that loses a race is), so any write another
request made in between is silently undone; the copy itself fails with "dictionary changed size
during iteration" (HTTP 500) when another request adds an item meanwhile. Real DynamoDB never
loses an acknowledged write, so the emulator must not either: holding one lock around each
DynamoDB and Streams request gives every request the atomicity the service gives it. Other
services (S3, ECS, IAM, ...) are still served concurrently.

Run with the Python of moto's virtualenv: python moto_server.py -H 127.0.0.1 -p 5000
(the same flags as moto_server). Used by scripts/services.sh.
"""

import sys
import threading

from moto import server
from moto.moto_server import werkzeug_app

# X-Amz-Target prefixes of the DynamoDB and DynamoDB Streams JSON APIs.
SERIALIZED_TARGETS = ("DynamoDB_20120810.", "DynamoDBStreams_20120810.")

_lock = threading.Lock()


class SerializedDynamoDB:
    """WSGI middleware: one DynamoDB or Streams request at a time, body included."""

    def __init__(self, app):
        self.app = app

    def __getattr__(self, name):
        return getattr(self.app, name)

    def __call__(self, environ, start_response):
        target = environ.get("HTTP_X_AMZ_TARGET", "")
        if not target.startswith(SERIALIZED_TARGETS):
            return self.app(environ, start_response)
        with _lock:
            result = self.app(environ, start_response)
            try:
                body = b"".join(result)
            finally:
                close = getattr(result, "close", None)
                if close is not None:
                    close()
        return [body]


def main() -> None:
    original = werkzeug_app.DomainDispatcherApplication

    def dispatcher(*args, **kwargs):
        app = original(*args, **kwargs)
        app.debug = True  # as moto's main sets it on the app it builds
        return SerializedDynamoDB(app)

    # moto's main builds its app from this name; wrap what it builds.
    server.DomainDispatcherApplication = dispatcher
    server.main(sys.argv[1:])


if __name__ == "__main__":
    main()
