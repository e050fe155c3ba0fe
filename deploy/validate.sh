#!/usr/bin/env bash
# Checks the deployment files with the real tools, as far as this machine has them:
#   systemd-analyze verify   the units (ExecStart pointed at this checkout's lapor)
#   nginx -t                 lapor.conf + lapor-locations.conf, and compose.conf (upstream names
#                            mapped to loopback), in a throw-away prefix with a self-signed cert
#   docker compose config    compose.yaml with a sample .env (or docker-compose v1)
# A tool that is missing is reported as SKIPPED, not passed. Nothing here needs root or a
# container engine; building the image needs `docker build -f deploy/Dockerfile .` elsewhere.
# NGINX_BIN=/path/to/nginx picks the nginx binary (e.g. one unpacked with `apt-get download nginx`).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(dirname "$here")"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
failed=0
report() { printf '%-8s %s\n' "$1" "$2"; [ "$1" = FAIL ] && failed=1; return 0; }

# --- systemd -------------------------------------------------------------------------------------
lapor_bin="${LAPOR_BIN:-$root/.venv/bin/lapor}"
if command -v systemd-analyze >/dev/null && [ -x "$lapor_bin" ]; then
  mkdir -p "$work/units"
  for unit in "lapor@.service" "lapor-worker.service"; do
    sed "s|/opt/lapor/venv/bin/lapor|$lapor_bin|" "$here/systemd/$unit" > "$work/units/$unit"
  done
  for unit in "lapor@8081.service" "lapor-worker.service"; do
    if out=$(cd "$work/units" && systemd-analyze verify "./$unit" 2>&1) && [ -z "$out" ]; then
      report ok "systemd-analyze verify $unit"
    else
      report FAIL "systemd-analyze verify $unit: $out"
    fi
  done
else
  report SKIPPED "systemd units (no systemd-analyze, or no $lapor_bin)"
fi

# --- nginx ---------------------------------------------------------------------------------------
nginx_bin="${NGINX_BIN:-$(command -v nginx || true)}"
if [ -n "$nginx_bin" ] && [ -x "$nginx_bin" ] && command -v openssl >/dev/null; then
  prefix="$work/nginx"
  mkdir -p "$prefix/conf/snippets" "$prefix/logs" "$prefix/cert"
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj "/CN=lapor.test" \
    -keyout "$prefix/cert/privkey.pem" -out "$prefix/cert/fullchain.pem" 2>/dev/null
  cp "$here/nginx/lapor-locations.conf" "$prefix/conf/snippets/"
  sed -e "s|/etc/letsencrypt/live/lapor.semarangkota.go.id|$prefix/cert|" \
      -e "s|/etc/nginx/snippets|$prefix/conf/snippets|" \
      -e "s|/var/log/nginx|$prefix/logs|" "$here/nginx/lapor.conf" > "$prefix/conf/lapor.conf"
  # compose.conf names containers; nginx -t resolves upstream hosts, so map them to loopback.
  sed -e "s|/etc/nginx/snippets|$prefix/conf/snippets|" -e "s|web\([12]\):8080|127.0.0.1:808\1|" \
      "$here/nginx/compose.conf" > "$prefix/conf/compose.conf"
  for site in lapor.conf compose.conf; do
    cat > "$prefix/conf/nginx.conf" <<EOF
pid $prefix/logs/nginx.pid;
error_log $prefix/logs/error.log;
events {}
http {
    access_log $prefix/logs/access.log;
    client_body_temp_path $prefix/logs/body;
    proxy_temp_path $prefix/logs/proxy;
    fastcgi_temp_path $prefix/logs/fastcgi;
    uwsgi_temp_path $prefix/logs/uwsgi;
    scgi_temp_path $prefix/logs/scgi;
    include $prefix/conf/$site;
}
EOF
    if out=$("$nginx_bin" -t -p "$prefix" -c "$prefix/conf/nginx.conf" 2>&1); then
      report ok "nginx -t $site ($("$nginx_bin" -v 2>&1 | sed 's/.*version: //'))"
    else
      report FAIL "nginx -t $site: $out"
    fi
  done
else
  report SKIPPED "nginx -t (no nginx: set NGINX_BIN=/path/to/nginx, or no openssl)"
fi

# --- compose -------------------------------------------------------------------------------------
if docker compose version >/dev/null 2>&1; then
  compose=(docker compose)
elif command -v docker-compose >/dev/null; then
  compose=(docker-compose)
else
  compose=()
fi
if [ ${#compose[@]} -gt 0 ]; then
  mkdir -p "$work/compose"
  cp -r "$here/compose.yaml" "$here/nginx" "$work/compose/"
  sed -e 's/^POSTGRES_PASSWORD=$/POSTGRES_PASSWORD=example/' \
      -e 's/^LAPOR_PRIVACY__KEY=$/LAPOR_PRIVACY__KEY=example/' \
      -e 's/^LAPOR_DASHBOARD__SESSION_SECRET=$/LAPOR_DASHBOARD__SESSION_SECRET=example/' \
      "$here/lapor.env.example" > "$work/compose/.env"
  if out=$(cd "$work/compose" && "${compose[@]}" -f compose.yaml config -q 2>&1); then
    report ok "${compose[*]} config ($("${compose[@]}" version --short 2>/dev/null || echo '?'))"
  else
    report FAIL "${compose[*]} config: $out"
  fi
  : > "$work/compose/.env"
  if out=$(cd "$work/compose" && "${compose[@]}" -f compose.yaml config -q 2>&1); then
    report FAIL "compose config accepted a .env without the required secrets"
  else
    report ok "compose config refuses to start without POSTGRES_PASSWORD/LAPOR_PRIVACY__KEY/..."
  fi
else
  report SKIPPED "compose config (neither docker compose nor docker-compose)"
fi

if [ "$failed" -ne 0 ]; then
  echo "some deployment checks failed" >&2
  exit 1
fi
