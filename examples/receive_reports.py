"""The minimal failure-report server of the ESA Climate Toolbox's own page
("Failure reporting in the ESA Climate Toolbox"), as a script: it answers
every POST with 200 OK and body OK, and appends the report to a log file in
the page's layout: a UTC timestamp line, then `key:` and the value for each
key (list items joined with newlines), then one blank line.

    python3 examples/receive_reports.py [PORT] [LOG]    # default 9898 server-log.txt
"""
import datetime
import json
import pathlib
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

port = int(sys.argv[1]) if len(sys.argv) > 1 else 9898
log_path = pathlib.Path(sys.argv[2] if len(sys.argv) > 2 else "server-log.txt")
# datetime.UTC is Python 3.11+; timezone.utc is the same object.
UTC = getattr(datetime, "UTC", datetime.timezone.utc)


class ReportRequestHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.end_headers()
        content_length = int(self.headers.get("Content-Length", 0))
        content = self.rfile.read(content_length).decode("utf-8")
        data = json.loads(content)
        with open(log_path, "a") as fh:
            fh.write(datetime.datetime.now(UTC).isoformat() + "\n")
            for k, v in data.items():
                fh.write(k + ":\n")
                fh.write("\n".join(v) if isinstance(v, list) else str(v) + "\n")
            fh.write("\n")
        self.wfile.write("OK".encode("utf-8"))


server = HTTPServer(("127.0.0.1", port), ReportRequestHandler)
# Said once the socket is bound, so a reader of this line can connect.
print(f"listening on http://127.0.0.1:{port}/, logging to {log_path}", flush=True)
server.serve_forever()
