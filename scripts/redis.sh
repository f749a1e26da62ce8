# Redis for the scale-out backend's tests and benchmark.
#
#   source scripts/redis.sh
#   ensure_redis    # installs Debian's redis-server when it is not on PATH
#
# Tests start their own redis-server on a free loopback port without
# persistence and stop it; nothing here starts a server.

ensure_redis() {
    if command -v redis-server >/dev/null 2>&1; then
        return 0
    fi
    printf '\n==> installing redis-server\n'
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    # The package lists are fetched only when the install fails without them.
    if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends redis-server; then
        $sudo apt-get update &&
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends redis-server ||
            return 1
    fi
    # The package starts a system service on port 6379; the tests do not use it.
    if command -v systemctl >/dev/null 2>&1; then
        $sudo systemctl stop redis-server >/dev/null 2>&1 || true
    fi
    command -v redis-server >/dev/null 2>&1
}
