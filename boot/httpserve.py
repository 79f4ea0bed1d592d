#!/usr/bin/env python3
"""Serves DIR over HTTP on 127.0.0.1 only, for the guest (via QEMU guestfwd).

usage: httpserve.py DIR PORTFILE LOGFILE LIFETIME_SECONDS
Binds an ephemeral port on 127.0.0.1, writes it to PORTFILE, logs each request
to LOGFILE, and exits by itself after LIFETIME_SECONDS (the harness also stops it).
"""
import functools
import http.server
import sys
import threading


def main():
    root, portfile, logfile, lifetime = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    log = open(logfile, "a", buffering=1)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, fmt, *args):
            log.write("%s %s\n" % (self.log_date_time_string(), fmt % args))

    handler = functools.partial(Handler, directory=root)
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    with open(portfile + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    import os
    os.replace(portfile + ".tmp", portfile)
    threading.Timer(lifetime, srv.shutdown).start()
    srv.serve_forever()


if __name__ == "__main__":
    main()
