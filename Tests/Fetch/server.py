#!/usr/bin/env python3
"""A fault-injecting HTTP server for earlyext's fetch tests. Loopback only.

    server.py --root DIR [--port N] [--tls CERT KEY]

Prints "PORT <n>" on stdout once listening, then serves files under DIR. The first path
component picks a behaviour; the rest is the file:

  /ok/FILE              the file, with Range support (206)
  /status/CODE/FILE     always answers CODE with a short body
  /flaky/K/FILE         the first K requests for this URL answer 500, then like /ok/
  /redirect/N/FILE      N redirects (302), then /ok/FILE
  /truncate/FILE        full Content-Length, half the body, then close
  /reset/FILE           first request: half the body then a TCP reset; then like /ok/
  /stall/FILE           headers and half the body, then nothing for 60 s
  /stallheaders/FILE    accepts, reads the request, then nothing for 60 s
  /norange/FILE         like /ok/ but ignores Range (always 200 with the whole file)
  /die/FILE             first request ever (marker file DIR/.died): half the body, then the
                        whole server exits (code 3); after that (a restarted server) like /ok/
  /corrupt/FILE         the file with its first byte flipped
  /_log                 one line per request so far: "METHOD PATH RANGE PROXIED"

A request with an absolute URI (a proxy request, "GET http://host/x") is served the same way,
using only the path, and logged as PROXIED.
"""
import argparse, os, socket, ssl, struct, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

LOG = []
COUNTS = {}
LOCK = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        proxied = self.path.startswith("http://") or self.path.startswith("https://")
        path = urlsplit(self.path).path if proxied else self.path.split("?")[0]
        with LOCK:
            LOG.append("GET %s %s %s" % (path, self.headers.get("Range", "-"), "PROXIED" if proxied else "DIRECT"))
            COUNTS[path] = COUNTS.get(path, 0) + 1
            count = COUNTS[path]
        if path == "/_log":
            return self.send_bytes(200, ("\n".join(LOG) + "\n").encode())
        parts = path.lstrip("/").split("/")
        mode, rest = parts[0], parts[1:]
        if mode == "status":
            code = int(rest[0])
            return self.send_bytes(code, b"status %d\n" % code)
        if mode == "flaky":
            if count <= int(rest[0]):
                return self.send_bytes(500, b"flaky\n")
            return self.serve("/".join(rest[1:]), ranges=True)
        if mode == "redirect":
            hops = int(rest[0])
            target = "/redirect/%d/%s" % (hops - 1, "/".join(rest[1:])) if hops > 1 else "/ok/" + "/".join(rest[1:])
            self.send_response(302)
            self.send_header("Location", target)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if mode == "stallheaders":
            time.sleep(60)
            return
        data = self.read_file("/".join(rest))
        if data is None:
            return self.send_bytes(404, b"not found\n")
        if mode == "ok":
            return self.serve_data(data, ranges=True)
        if mode == "norange":
            return self.serve_data(data, ranges=False)
        if mode == "corrupt":
            return self.serve_data(bytes([data[0] ^ 0xFF]) + data[1:], ranges=True)
        if mode == "truncate":
            return self.send_partial(data, len(data) // 2, then="close")
        if mode == "stall":
            return self.send_partial(data, len(data) // 2, then="stall")
        if mode == "reset":
            if count == 1:
                return self.send_partial(data, len(data) // 2, then="reset")
            return self.serve_data(data, ranges=True)
        if mode == "die":
            marker = os.path.join(ROOT, ".died")
            if not os.path.exists(marker):
                open(marker, "w").close()
                self.send_partial(data, len(data) // 2, then="flush")
                os._exit(3)
            return self.serve_data(data, ranges=True)
        return self.send_bytes(404, b"unknown mode\n")

    def read_file(self, name):
        full = os.path.realpath(os.path.join(ROOT, name))
        if not full.startswith(os.path.realpath(ROOT) + os.sep) or not os.path.isfile(full):
            return None
        with open(full, "rb") as f:
            return f.read()

    def serve(self, name, ranges):
        data = self.read_file(name)
        if data is None:
            return self.send_bytes(404, b"not found\n")
        return self.serve_data(data, ranges)

    def serve_data(self, data, ranges):
        header = self.headers.get("Range")
        if ranges and header and header.startswith("bytes="):
            start_text, _, end_text = header[6:].partition("-")
            start = int(start_text)
            end = int(end_text) if end_text else len(data) - 1
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", "bytes */%d" % len(data))
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = data[start:end + 1]
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, start + len(body) - 1, len(data)))
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            self.end_headers()
            self.write_chunked(body)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        if ranges:
            self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self.write_chunked(data)

    def write_chunked(self, body):
        view = memoryview(body)
        for i in range(0, len(body), 1 << 20):
            self.wfile.write(view[i:i + (1 << 20)])

    def send_bytes(self, code, body):
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_partial(self, data, count, then):
        self.send_response(200)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data[:count])
        self.wfile.flush()
        if then == "stall":
            time.sleep(60)
        elif then == "reset":
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        self.close_connection = True


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    global ROOT
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
    args = parser.parse_args()
    ROOT = args.root
    server = Server(("127.0.0.1", args.port), Handler)
    if args.tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(args.tls[0], args.tls[1])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    print("PORT %d" % server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
