"""The compat cases' web server, run inside a fleet host's namespaces.

Serves the cases' `www/` trees read-only (as `python3 -m http.server`
does: Last-Modified, If-Modified-Since, HEAD), and a few endpoints the
`uri` and `get_url` cases need:

  /CASE/status/NNN        answers status NNN with a short text body
  /CASE/redirect/PATH     302 to /CASE/PATH
  /CASE/disposition/NAME  a small file named NAME by Content-Disposition
  any POST/PUT/PATCH/DELETE: a JSON echo of the method, path, content
                     type and body, status 201 for POST and 200 otherwise

It is a proxy too, of a kind: a request that names a whole URL (`GET
http://example.invalid/CASE/x`, as a client sends it to its proxy) is
answered as its path, so a case can fetch a host that does not exist
and get the file only if its client went through this server.

Usage: http_server.py ROOT ADDRESS PORT
"""

import http.server
import json
import sys


class Handler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def _send(self, status, body, content_type="text/plain", extra=()):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _special(self):
        # /CASE/status/404: the first segment is the case's name.
        segments = self.path.split("?")[0].split("/")
        case, rest = segments[1], segments[2:]
        if len(rest) >= 2 and rest[0] == "status":
            self._send(int(rest[1]), "status %s\n" % rest[1])
            return True
        if len(rest) >= 2 and rest[0] == "redirect":
            self._send(302, "", extra=[("Location", "/%s/%s" % (case, "/".join(rest[1:])))])
            return True
        if len(rest) >= 2 and rest[0] == "disposition":
            self._send(200, "named by the server\n",
                       extra=[("Content-Disposition", 'attachment; filename="%s"' % rest[1])])
            return True
        return False

    def _unproxy(self):
        if self.path.startswith("http://"):
            self.path = "/" + self.path[len("http://"):].partition("/")[2]

    def do_GET(self):
        self._unproxy()
        if not self._special():
            super().do_GET()

    def do_HEAD(self):
        self._unproxy()
        if not self._special():
            super().do_HEAD()

    def _echo(self):
        self._unproxy()
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace")
        answer = {
            "method": self.command,
            "path": self.path,
            "content_type": self.headers.get("Content-Type"),
            "x_token": self.headers.get("X-Token"),
            "body": body,
        }
        self._send(201 if self.command == "POST" else 200,
                   json.dumps(answer, sort_keys=True), "application/json")

    do_POST = do_PUT = do_PATCH = do_DELETE = _echo


def main():
    root, address, port = sys.argv[1], sys.argv[2], int(sys.argv[3])

    def handler(*args, **kwargs):
        return Handler(*args, directory=root, **kwargs)

    server = http.server.ThreadingHTTPServer((address, port), handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
