# The foreign chat server of the adapter tests (tests/foreign/): a Python
# program that knows nothing of seqsync, run from its own virtual
# environment.
#
#   source scripts/foreign.sh
#   ensure_foreign_server   # creates tests/foreign/.venv when it is missing
#                           # or tests/foreign/requirements.txt changed
#
# The tests look for tests/foreign/.venv/bin/python, or the interpreter named
# by SEQSYNC_FOREIGN_PYTHON. Run from the repository root; everything comes
# from PyPI (and Debian, for python3 itself when it is missing).

_foreign_dir=tests/foreign
_foreign_venv=tests/foreign/.venv

# What the environment was built from: the pinned requirements and the
# interpreter's version. A change of either rebuilds it.
_foreign_stamp() {
    {
        cat "$_foreign_dir/requirements.txt"
        python3 --version 2>&1
    } | sha256sum | cut -d' ' -f1
}

_foreign_python_ok() {
    command -v python3 >/dev/null 2>&1 &&
        python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))' >/dev/null 2>&1
}

_foreign_install_python() {
    local sudo=""
    if [ "$(id -u)" -ne 0 ]; then
        sudo="sudo"
    fi
    # The package lists are fetched only when the install fails without them.
    if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends python3 python3-venv; then
        $sudo apt-get update &&
            DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends python3 python3-venv ||
            return 1
    fi
}

ensure_foreign_server() {
    if ! _foreign_python_ok; then
        printf '\n==> installing python3 (3.11 or newer)\n'
        _foreign_install_python || return 1
        if ! _foreign_python_ok; then
            echo "python3 3.11 or newer is needed for the foreign server tests" >&2
            return 1
        fi
    fi
    local stamp
    stamp=$(_foreign_stamp)
    if [ -x "$_foreign_venv/bin/python" ] &&
        [ "$(cat "$_foreign_venv/.requirements-stamp" 2>/dev/null)" = "$stamp" ] &&
        "$_foreign_venv/bin/python" -c 'import aiohttp, redis' >/dev/null 2>&1; then
        export SEQSYNC_FOREIGN_PYTHON="$PWD/$_foreign_venv/bin/python"
        return 0
    fi
    printf '\n==> foreign server: Python environment in %s\n' "$_foreign_venv"
    rm -f "$_foreign_venv/.requirements-stamp"
    # Debian ships venv's pip bootstrap apart, in python3-venv.
    if ! python3 -m venv --clear "$_foreign_venv"; then
        _foreign_install_python && python3 -m venv --clear "$_foreign_venv" || return 1
    fi
    "$_foreign_venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        -r "$_foreign_dir/requirements.txt" || return 1
    printf '%s\n' "$stamp" >"$_foreign_venv/.requirements-stamp"
    export SEQSYNC_FOREIGN_PYTHON="$PWD/$_foreign_venv/bin/python"
}
