"""A minimal loopback CDN API + log server for benches/sync_month.sh (no signature check: the
signature is tested in tests/it/sync.rs; this only measures how sync scales with the number of
files). Serves DescribeCdnDomainLogs pages over HOURS hourly files of one domain, each a tiny
gzip log, and the files themselves.

Usage: python3 benches/sync_stub.py PORT HOURS
"""
import gzip
import json
import sys
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

PORT, HOURS = int(sys.argv[1]), int(sys.argv[2])
DOMAIN = "www.example.com"
BJ = timezone(timedelta(hours=8))
END = datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=2)
FILES = []
for i in range(HOURS):
    start = END - timedelta(hours=HOURS - i)
    local = start.astimezone(BJ)
    name = f"{DOMAIN}_{local:%Y_%m_%d}_{local:%H}0000_{(local + timedelta(hours=1)):%H}0000.gz"
    lines = "".join(
        f"[{(local + timedelta(seconds=s * 60)).strftime('%d/%b/%Y:%H:%M:%S')} +0800] 192.0.2.{s % 250} - 12 \"-\" "
        f"\"GET http://{DOMAIN}/p/{s}.html\" 200 191 {1000 + s} HIT \"Mozilla/5.0\" \"text/html\"\n"
        for s in range(50))
    FILES.append((name, start, gzip.compress(lines.encode(), 1)))
BY_PATH = {f"/{DOMAIN}/{n}": b for n, _, b in FILES}


class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass

    def do_GET(self):
        u = urlparse(self.path)
        if u.path in BY_PATH:
            body = BY_PATH[u.path]
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        q = {k: v[0] for k, v in parse_qs(u.query).items()}
        t0 = datetime.strptime(q["StartTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        t1 = datetime.strptime(q["EndTime"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
        size, page = int(q.get("PageSize", 300)), int(q.get("PageNumber", 1))
        match = [f for f in FILES if t0 <= f[1] < t1]
        infos = [{"LogName": n, "LogPath": f"http://127.0.0.1:{PORT}/{DOMAIN}/{n}?Signature=x",
                  "LogSize": len(b), "StartTime": s.strftime("%Y-%m-%dT%H:%M:%SZ"),
                  "EndTime": (s + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")}
                 for n, s, b in match[(page - 1) * size: page * size]]
        body = json.dumps({"RequestId": "bench", "DomainLogDetails": {"DomainLogDetail": [{
            "DomainName": DOMAIN, "LogCount": len(infos),
            "PageInfos": {"PageIndex": page, "PageSize": size, "Total": len(match)},
            "LogInfos": {"LogInfoDetail": infos}}]}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


ThreadingHTTPServer(("127.0.0.1", PORT), H).serve_forever()
