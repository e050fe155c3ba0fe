#!/usr/bin/env bash
# The production layout on one machine, for real: `lapor migrate` on PostgreSQL, two `lapor serve`
# processes (worker off) behind nginx with deploy/nginx/lapor-locations.conf, then
#   - Twilio-signed webhooks (query with %-escapes included) through nginx are accepted,
#   - both processes take requests, /metrics is not exposed, X-Request-Id reaches the gateway,
#   - one process stopped (SIGTERM, as in a rolling restart): webhooks still succeed.
# Needs: LAPOR_BIN (a `lapor` installed from a wheel, as the Dockerfile does; default .venv/bin/lapor),
# NGINX_BIN (default: nginx on PATH), PostgreSQL at PGURL (default postgresql://root@127.0.0.1:5432).
# Uses ports 18080-18082 on 127.0.0.1 and a scratch database lapor_smoke, dropped at the end.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
lapor="${LAPOR_BIN:-$root/.venv/bin/lapor}"
nginx="${NGINX_BIN:-$(command -v nginx)}"
pg="${PGURL:-postgresql://root@127.0.0.1:5432}"
py="$root/.venv/bin/python"
work="$(mktemp -d)"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  [ -f "$work/nginx/logs/nginx.pid" ] && kill "$(cat "$work/nginx/logs/nginx.pid")" 2>/dev/null || true
  psql "$pg/postgres" -qc 'DROP DATABASE IF EXISTS lapor_smoke WITH (FORCE)' >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT

psql "$pg/postgres" -qc 'DROP DATABASE IF EXISTS lapor_smoke WITH (FORCE)' -c 'CREATE DATABASE lapor_smoke'
export LAPOR_DATABASE__URL="${pg/postgresql:/postgresql+asyncpg:}/lapor_smoke"
export LAPOR_SERVER__PUBLIC_URL=http://127.0.0.1:18080
export LAPOR_WORKER__ENABLED=false
export LAPOR_SIMULATOR__ENABLED=false
LAPOR_PRIVACY__KEY="$("$lapor" keys generate)"
export LAPOR_PRIVACY__KEY
export LAPOR_DASHBOARD__SESSION_SECRET=smoke-session-secret
export LAPOR_CHANNELS__TWILIO__ACCOUNT_SID=AC00000000000000000000000000000000
export LAPOR_CHANNELS__TWILIO__AUTH_TOKEN=smoke-auth-token
export LAPOR_CHANNELS__TWILIO__SMS_FROM=+15005550006
export LAPOR_CHANNELS__TWILIO__API_BASE=http://127.0.0.1:9

cd "$work"
"$lapor" migrate
for port in 18081 18082; do
  "$lapor" serve --host 127.0.0.1 --port "$port" > "serve-$port.log" 2>&1 &
  pids+=($!)
done
for port in 18081 18082; do
  for _ in $(seq 100); do grep -q "^Lapor Gateway" "serve-$port.log" && break; sleep 0.2; done
  grep -q "^Lapor Gateway" "serve-$port.log" || { cat "serve-$port.log"; exit 1; }
done

prefix="$work/nginx"
mkdir -p "$prefix/conf/snippets" "$prefix/logs"
cp "$here/nginx/lapor-locations.conf" "$prefix/conf/snippets/"
sed -e "s|/etc/nginx/snippets|$prefix/conf/snippets|" -e "s|web\([12]\):8080|127.0.0.1:1808\1|" \
    -e "s|listen 80;|listen 127.0.0.1:18080;|" "$here/nginx/compose.conf" > "$prefix/conf/site.conf"
cat > "$prefix/conf/nginx.conf" <<EOF
pid $prefix/logs/nginx.pid;
error_log $prefix/logs/error.log;
events {}
http {
    log_format up '\$status \$upstream_addr \$request_id \$request_uri';
    access_log $prefix/logs/access.log up;
    client_body_temp_path $prefix/logs/body;
    proxy_temp_path $prefix/logs/proxy;
    fastcgi_temp_path $prefix/logs/fastcgi;
    uwsgi_temp_path $prefix/logs/uwsgi;
    scgi_temp_path $prefix/logs/scgi;
    include $prefix/conf/site.conf;
}
EOF
"$nginx" -p "$prefix" -c "$prefix/conf/nginx.conf"

"$py" - <<'EOF'
import os, signal, sys, time, urllib.error, urllib.parse, urllib.request
from twilio.request_validator import RequestValidator

public, token = os.environ["LAPOR_SERVER__PUBLIC_URL"], os.environ["LAPOR_CHANNELS__TWILIO__AUTH_TOKEN"]

def webhook(n: int, target: str = "/webhooks/twilio/sms?kota=Semarang%20Tengah") -> int:
    form = {"MessageSid": f"SM{n:032x}", "AccountSid": os.environ["LAPOR_CHANNELS__TWILIO__ACCOUNT_SID"],
            "From": f"+62812345{n:05d}", "To": "+15005550006", "Body": "LaporHendi lampu jalan mati",
            "NumMedia": "0"}
    signature = RequestValidator(token).compute_signature(public + target, form)
    request = urllib.request.Request("http://127.0.0.1:18080" + target, urllib.parse.urlencode(form).encode(),
                                     {"X-Twilio-Signature": signature})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code

def get(path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen("http://127.0.0.1:18080" + path, timeout=10) as response:
            return response.status, response.headers.get("X-Request-Id", "")
    except urllib.error.HTTPError as exc:
        return exc.code, ""

statuses = [webhook(n) for n in range(20)]
assert statuses == [200] * 20, statuses
assert webhook(99, "/webhooks/twilio/sms?kota=other") == 200
assert get("/healthz")[0] == 200 and get("/readyz")[0] == 200
assert get("/metrics")[0] == 404, "metrics are scraped per process, not through nginx"
request_id = get("/healthz")[1]
assert len(request_id) == 32, f"nginx's $request_id is the gateway's request id, got {request_id!r}"
print("ok: 21 signed webhooks through nginx, healthz/readyz 200, /metrics hidden, X-Request-Id kept")
EOF
used=$(awk '$2 ~ /^127/ {print $2}' "$prefix/logs/access.log" | sort -u | wc -l)
[ "$used" -eq 2 ] || { echo "expected both upstreams used, got $used"; exit 1; }
echo "ok: both processes took requests"

kill -TERM "${pids[0]}"
wait "${pids[0]}" || true
"$py" - <<'EOF'
import os, urllib.parse, urllib.request
from twilio.request_validator import RequestValidator
public, token = os.environ["LAPOR_SERVER__PUBLIC_URL"], os.environ["LAPOR_CHANNELS__TWILIO__AUTH_TOKEN"]
for n in range(100, 110):
    form = {"MessageSid": f"SM{n:032x}", "AccountSid": os.environ["LAPOR_CHANNELS__TWILIO__ACCOUNT_SID"],
            "From": f"+62812345{n:05d}", "To": "+15005550006", "Body": "LaporHendi sampah", "NumMedia": "0"}
    signature = RequestValidator(token).compute_signature(public + "/webhooks/twilio/sms", form)
    request = urllib.request.Request("http://127.0.0.1:18080/webhooks/twilio/sms",
                                     urllib.parse.urlencode(form).encode(), {"X-Twilio-Signature": signature})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
print("ok: one process stopped (SIGTERM), 10 more webhooks all accepted by the other")
EOF
count=$(psql "$pg/lapor_smoke" -tAc 'SELECT count(*) FROM inbound_messages')
[ "$count" -eq 31 ] || { echo "expected 31 stored messages, got $count"; exit 1; }
echo "ok: 31 messages stored once each in PostgreSQL"
# Both processes started at once on a new database: one creates the admin, neither crashes.
! grep -l Traceback serve-1808?.log || { cat serve-1808?.log; exit 1; }
[ "$(cat serve-1808?.log | grep -c '^First start: created dashboard user')" -eq 1 ]
echo "ok: simultaneous first start: one admin created, no traceback"
