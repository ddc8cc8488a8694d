#!/bin/sh
# Installs the Debian packages evbrokerd needs to build, test and benchmark.
# A quick no-op when everything is present; uses sudo when not root; never prompts.
set -e
PKGS="build-essential pkg-config libevent-dev libhiredis-dev libinih-dev libssl-dev libjemalloc-dev check redis-server redis-tools clang-format systemd clang libclang-rt-14-dev valgrind python3-redis"
missing=""
for p in $PKGS; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "setup: installing:$missing"
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo -n"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends $missing </dev/null
