#!/usr/bin/env bash
# System packages PriceMyRide's local stack needs: a JDK and Maven (Kafka), PostgreSQL server binaries,
# Python 3.11 with venv, Chromium and its driver (the dashboard's browser tests), Prometheus and promtool.
# Installs what is missing when run as root on Debian; otherwise says what to install.
set -euo pipefail

missing=()
command -v java >/dev/null || missing+=(default-jdk-headless)
command -v mvn >/dev/null || missing+=(maven)
compgen -G "/usr/lib/postgresql/*/bin/pg_ctl" >/dev/null || command -v pg_ctl >/dev/null || missing+=(postgresql)
command -v python3.11 >/dev/null || command -v python3 >/dev/null || missing+=(python3 python3-venv)
test -x /usr/bin/chromium || missing+=(chromium)
test -x /usr/bin/chromedriver || missing+=(chromium-driver)
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)

if [ ${#missing[@]} -eq 0 ]; then
  echo "[system] java, maven, postgresql, python, chromium, chromedriver and prometheus are present"
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
  echo "[system] missing: ${missing[*]}; install them (Debian: sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "[system] installing ${missing[*]} from Debian's packages"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
# Debian's prometheus package enables its own server on 9090 where systemd runs; the project runs its own.
if command -v systemctl >/dev/null && systemctl is-enabled prometheus >/dev/null 2>&1; then
  systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
# Debian's package starts its own cluster on 5432; the project runs its own cluster instead.
if command -v pg_ctlcluster >/dev/null; then
  for cluster in $(pg_lsclusters -h 2>/dev/null | awk '$4 == "online" {print $1 "/" $2}'); do
    pg_ctlcluster "${cluster%/*}" "${cluster#*/}" stop || true
  done
fi
