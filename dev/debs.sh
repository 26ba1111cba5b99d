#!/usr/bin/env bash
# The Debian packages that `make up` and its tests need: PostgreSQL (metadata DB), Redis (Celery broker),
# Chromium and its driver (the browser tests). Installs only what is missing; needs root or sudo.
set -euo pipefail
need=()
command -v redis-server >/dev/null || need+=(redis-server)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
command -v chromium >/dev/null || need+=(chromium)
command -v chromedriver >/dev/null || need+=(chromium-driver)
id postgres >/dev/null 2>&1 || need+=(postgresql)
if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
  sudo="sudo"
fi
echo "installing Debian packages: ${need[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# The package starts system services of its own; the stack runs its own servers on other ports.
for service in redis-server postgresql; do
  $sudo service "$service" stop >/dev/null 2>&1 || true
done
