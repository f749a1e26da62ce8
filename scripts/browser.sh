# Browser side of seqsync: the wasm package (npm `seqsync`), its tests in
# headless Chromium and Node (22 every file; 20, with its WebSocket flag, the
# files that drive the socket), the
# Vite, webpack, esbuild, worker and page-reload checks, the chat-web demo test, and
# the package against the foreign chat server of tests/foreign/.
#
#   source scripts/browser.sh
#   ensure_browser_toolchain   # installs what is missing, skips what is there
#   run_browser_tests          # builds the package, runs every browser test,
#                              # each suite a step (run_step, scripts/lib.sh:
#                              # needs SEQSYNC_STEP_LOGS)
#   run_browser_bench          # per-message cost vs a pure-JS baseline, bundle size
#
# Run from the repository root. Every function returns non-zero on failure,
# also where the caller tests it (`if run_browser_tests`, `... || ...`), which
# turns `set -e` off: each step therefore ends in `|| exit 1` (the function
# bodies are subshells, so that ends only the function).

_browser_step() {
    printf '\n==> %s\n' "$*"
}

# The wasm-bindgen version locked in Cargo.lock: the CLI must match it exactly.
_wasm_bindgen_version() {
    awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock
}

_cargo_target_dir() {
    if [ -n "${CARGO_TARGET_DIR:-}" ]; then
        printf '%s\n' "$CARGO_TARGET_DIR"
    else
        cargo metadata --format-version 1 --no-deps |
            node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).target_directory))'
    fi
}

_apt_install() {
    # Lists are fetched only when the install cannot proceed without them.
    if ! compgen -G "/var/lib/apt/lists/*_Packages*" >/dev/null; then
        apt-get update
    fi
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"; then
        apt-get update
        DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@"
    fi
}

_cargo_install() {
    # A lock file that names a version the registry no longer serves makes
    # --locked fail; fall back to a fresh resolution then.
    cargo install --locked "$@" || cargo install "$@"
}

ensure_browser_toolchain() (
    set -euo pipefail
    export PATH="$HOME/.cargo/bin:$PATH"

    _browser_step "browser toolchain: wasm32 target"
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        rustup target add wasm32-unknown-unknown || exit 1
    fi

    local version
    version=$(_wasm_bindgen_version)
    if [ -z "$version" ]; then
        echo "wasm-bindgen is not in Cargo.lock" >&2
        return 1
    fi
    _browser_step "browser toolchain: wasm-bindgen-cli $version"
    if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$version" ]; then
        _cargo_install wasm-bindgen-cli --version "=$version" || exit 1
    fi

    _browser_step "browser toolchain: wasm-pack"
    if ! command -v wasm-pack >/dev/null 2>&1; then
        _cargo_install wasm-pack || exit 1
    fi

    _browser_step "browser toolchain: node, wasm-opt, chromium"
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        _apt_install nodejs npm || exit 1
    fi
    if ! command -v wasm-opt >/dev/null 2>&1; then
        npm install -g binaryen || exit 1
    fi
    if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
        _apt_install chromium chromium-driver || exit 1
    fi

    # Each from its committed lock file, and only when node_modules is
    # missing or older than the lock: the test tools, the bundler apps (Vite,
    # webpack, esbuild, React and Vue over Vite), and Node 22 (the npm `node`
    # package ships the binary as npm packages).
    local dir
    for dir in tests/browser tests/browser/apps/vite tests/browser/apps/webpack tests/browser/apps/esbuild \
        tests/browser/apps/react tests/browser/apps/vue tests/browser/node22; do
        _browser_step "browser toolchain: node packages of $dir"
        if [ ! -d "$dir/node_modules" ] ||
            [ "$dir/package-lock.json" -nt "$dir/node_modules/.package-lock.json" ]; then
            (cd "$dir" && npm ci --no-audit --no-fund) || exit 1
        fi
    done
)

# Node 22 from tests/browser/node22 (global WebSocket, no flag).
_node22() {
    printf '%s/tests/browser/node22/node_modules/.bin/node\n' "$(pwd)"
}

# wasm-pack's release build of sdk-wasm into OUT_DIR (relative to sdk-wasm),
# its files named NAME (NAME.js, NAME_bg.wasm); further arguments go to cargo
# (e.g. --no-default-features --features websys).
_wasm_pack_build() (
    local out=$1 name=$2
    shift 2
    cd sdk-wasm &&
        CARGO_PROFILE_RELEASE_OPT_LEVEL=3 \
        CARGO_PROFILE_RELEASE_LTO=true \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=1 \
        CARGO_PROFILE_RELEASE_PANIC=abort \
        CARGO_PROFILE_RELEASE_DEBUG=false \
            wasm-pack build --release --target web --out-dir "$out" --out-name "$name" --no-pack -- "$@"
)

# Builds sdk-wasm/pkg: the npm package `seqsync`, and copies it to
# examples/chat-web/pkg where the demo page loads it from.
build_browser_package() (
    set -euo pipefail
    export PATH="$HOME/.cargo/bin:$PATH"
    _browser_step "build the npm package (wasm-pack, release, target web)"
    rm -rf sdk-wasm/pkg || exit 1
    # For the browser build only (the workspace's release profile for native
    # code stays as it is): whole-program LTO, one codegen unit, abort on
    # panic. opt-level 3 rather than "z": after `wasm-opt -Oz` it came out
    # both smaller gzipped and faster (sdk-wasm/BENCHMARKS.md).
    # Each entry of the package has its own module, built with only the
    # binding it uses. The default one: the `Session` under `Client`.
    _wasm_pack_build pkg seqsync_wasm --no-default-features --features session || exit 1
    # The module of `seqsync/foreign`: the same with the binding of a session
    # over a server that does not speak the protocol, loaded only by pages
    # that use one (sdk-wasm/BENCHMARKS.md: it would add 9 KB to every page).
    _wasm_pack_build pkg seqsync_foreign --no-default-features --features foreign || exit 1
    # The module of `seqsync/sequencer`: the bare sequencer (`Core`) alone,
    # for applications with their own transport (sdk-wasm/BENCHMARKS.md: in
    # the default module it cost every page about 4 KB).
    _wasm_pack_build pkg seqsync_sequencer --no-default-features --features sequencer || exit 1
    cp sdk-wasm/js/seqsync.js sdk-wasm/js/seqsync.d.ts sdk-wasm/js/foreign.js sdk-wasm/js/foreign.d.ts \
        sdk-wasm/js/sequencer.js sdk-wasm/js/sequencer.d.ts sdk-wasm/js/shared.js \
        sdk-wasm/js/package.json sdk-wasm/js/README.md sdk-wasm/pkg/ || exit 1
    rm -f sdk-wasm/pkg/.gitignore
    rm -rf examples/chat-web/pkg
    cp -r sdk-wasm/pkg examples/chat-web/pkg || exit 1
)

# Builds the reference server and prints the path of its binary.
_browser_server_bin() {
    cargo build --locked -p seqsync-server >&2 || return 1
    printf '%s/debug/seqsync-server\n' "$(_cargo_target_dir)"
}

# Builds test-support's foreign_fixture (the foreign chat server behind
# fault-injecting WebSocket proxies, driven over stdin) and prints its path.
_foreign_fixture_bin() {
    cargo build --locked -p seqsync-test-support --bin foreign_fixture >&2 || return 1
    printf '%s/debug/foreign_fixture\n' "$(_cargo_target_dir)"
}

# The Node test files that also run on Node 20. What differs between the two
# is the platform under the package, above all the WebSocket (behind a flag
# on 20, global on 22); these two files drive the socket through every state
# (messages under faults, cuts, refusals, a dead peer, close). Node 22 runs
# every file.
SEQSYNC_NODE20_TESTS=${SEQSYNC_NODE20_TESTS:-"client.test.mjs connection.test.mjs"}

# The browser suites, each a step of its own (`run_step`, scripts/lib.sh):
# each prints its wall time and test counts, and every one runs even when an
# earlier one failed, except those that need the package or the server that
# failed to build. Returns non-zero when any failed.
run_browser_tests() (
    export PATH="$HOME/.cargo/bin:$PATH"
    local root failed=0
    root=$(pwd)

    if ! run_step "browser: build the npm package" build_browser_package; then
        skip_step "browser: every suite" "the npm package did not build"
        exit 1
    fi

    run_step "browser: wasm-bindgen tests in headless Chromium" \
        _browser_in sdk-wasm env CHROMEDRIVER=/usr/bin/chromedriver wasm-pack test --headless --chrome ||
        failed=1

    run_step "browser: types compile against their use, no any" \
        _browser_types_check || failed=1

    local server
    if ! server=$(_browser_server_bin); then
        skip_step "browser: suites against the reference server" "the server did not build"
        exit 1
    fi

    local scratch
    scratch=$(mktemp -d)
    trap 'rm -rf "$scratch"' EXIT
    if ! run_step "browser: the packed package installed in a fresh project" \
        _browser_node_app "$scratch"; then
        skip_step "browser: Node and consumer suites" "the package did not pack or install"
        exit 1
    fi

    local node22
    node22=$(_node22)
    run_step "browser: Node 22, every test file" \
        _browser_in "$scratch/app" env SEQSYNC_SERVER_BIN="$server" \
        "$node22" --test --test-reporter=tap ./*.test.mjs || failed=1

    # shellcheck disable=SC2086 # the list is word-split on purpose
    run_step "browser: Node 20, $SEQSYNC_NODE20_TESTS" \
        _browser_in "$scratch/app" env SEQSYNC_SERVER_BIN="$server" \
        node --experimental-websocket --test --test-reporter=tap $SEQSYNC_NODE20_TESTS || failed=1

    run_step "browser: types against the installed package (exports map)" \
        _browser_installed_types_check "$scratch" || failed=1

    run_step "browser: consumers: Vite, webpack, esbuild (page, worker, reload), React, Vue in Chromium" \
        _browser_in tests/browser env SEQSYNC_SERVER_BIN="$server" \
        SEQSYNC_TARBALL="$(echo "$scratch"/seqsync-*.tgz)" \
        node --test --test-reporter=tap consumers.test.mjs || failed=1

    run_step "browser: loading the WASM module: CSP, load errors, in Chromium" \
        _browser_in tests/browser env SEQSYNC_SERVER_BIN="$server" SEQSYNC_PKG="$root/sdk-wasm/pkg" \
        node --test --test-reporter=tap load.test.mjs || failed=1

    run_step "browser: the client's API in Chromium: connect() after a give-up, disconnect(), force close, loop, oversized publish" \
        _browser_in tests/browser env SEQSYNC_SERVER_BIN="$server" SEQSYNC_PKG="$root/sdk-wasm/pkg" \
        node --test --test-reporter=tap api.test.mjs || failed=1

    run_step "browser: chat-web demo in two pages under faults (Playwright)" \
        _browser_in tests/browser env SEQSYNC_SERVER_BIN="$server" SEQSYNC_ROOT="$root" \
        node --test --test-reporter=tap demo.test.mjs || failed=1

    run_step "browser: a tab crashed mid-stream (Page.crash) resumes: persist, an app-owned position" \
        _browser_in tests/browser env SEQSYNC_SERVER_BIN="$server" SEQSYNC_PKG="$root/sdk-wasm/pkg" \
        node --test --test-reporter=tap crash.test.mjs || failed=1

    local fixture
    if fixture=$(_foreign_fixture_bin); then
        run_step "browser: foreign chat server behind faults, Node and Chromium" \
            _browser_in tests/browser env SEQSYNC_FOREIGN_FIXTURE_BIN="$fixture" SEQSYNC_PKG="$root/sdk-wasm/pkg" \
            node --experimental-websocket --test --test-reporter=tap foreign.test.mjs || failed=1
    else
        skip_step "browser: foreign chat server" "its fixture did not build"
        failed=1
    fi

    # The budget holds the size reached, with about 1 KB of room
    # (sdk-wasm/BENCHMARKS.md says where the bytes go); half the weight
    # (32,000) and the goal (19,000), which it misses, are printed with it.
    run_step "browser: size of the default page (fails above its budget)" \
        node tests/browser/size.mjs sdk-wasm/pkg --budget "${SEQSYNC_SIZE_BUDGET:-56000}" || failed=1
    run_step "browser: size of a foreign-server page (fails above its budget)" \
        node tests/browser/size.mjs sdk-wasm/pkg --foreign --budget "${SEQSYNC_FOREIGN_SIZE_BUDGET:-78600}" ||
        failed=1

    exit "$failed"
)

# Runs a command in a directory (a subshell, so the caller stays where it is).
_browser_in() (
    cd "$1" || exit 1
    shift
    "$@"
)

_browser_types_check() (
    cd tests/browser && npx --no-install tsc -p types || exit 1
    cd ../.. || exit 1
    if grep -nw 'any' sdk-wasm/pkg/seqsync.d.ts sdk-wasm/pkg/foreign.d.ts sdk-wasm/pkg/sequencer.d.ts; then
        echo "the package's types must not use any" >&2
        exit 1
    fi
)

# Packs the package into SCRATCH and installs the tarball in SCRATCH/app,
# beside the Node test files, as a user's project would.
_browser_node_app() (
    local scratch=$1
    (cd sdk-wasm/pkg && npm pack --silent --pack-destination "$scratch" >/dev/null) || exit 1
    mkdir -p "$scratch/app" || exit 1
    cp tests/browser/node/*.test.mjs tests/browser/support.mjs "$scratch/app/" || exit 1
    cd "$scratch/app" || exit 1
    printf '{ "name": "seqsync-node-check", "private": true, "type": "module" }\n' >package.json || exit 1
    npm install --no-audit --no-fund --offline "$scratch"/seqsync-*.tgz >/dev/null || exit 1
)

_browser_installed_types_check() (
    local scratch=$1
    mkdir -p "$scratch/app/types" || exit 1
    cp tests/browser/types/usage.ts tests/browser/types/errors.ts "$scratch/app/types/" || exit 1
    node -e '
        const c = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        delete c.compilerOptions.paths;
        console.log(JSON.stringify(c));
    ' tests/browser/types/tsconfig.json >"$scratch/app/types/tsconfig.json" || exit 1
    node tests/browser/node_modules/typescript/bin/tsc -p "$scratch/app/types" || exit 1
)

run_browser_bench() (
    set -euo pipefail
    export PATH="$HOME/.cargo/bin:$PATH"
    if [ ! -f sdk-wasm/pkg/seqsync.js ]; then
        build_browser_package || exit 1
    fi
    _browser_step "per-message cost in headless Chromium vs the pure-JS baseline"
    node tests/browser/bench.mjs sdk-wasm/pkg || exit 1
    _browser_step "bundle size"
    node tests/browser/size.mjs sdk-wasm/pkg || exit 1
    _browser_step "bundle size of a page with only the bare Sequencer (seqsync/sequencer)"
    node tests/browser/size.mjs sdk-wasm/pkg --sequencer || exit 1
)

# The socket in JavaScript (the package) against the measured prototypes of
# a socket owned by the WASM module, through web-sys and through gloo-net
# (sdk-wasm/src/websys.rs): per-message cost in one page each, and size.
run_shell_comparison() (
    set -euo pipefail
    export PATH="$HOME/.cargo/bin:$PATH"
    local out
    out=$(_cargo_target_dir)/shell-comparison
    rm -rf "$out"
    if [ ! -f sdk-wasm/pkg/seqsync.js ]; then
        build_browser_package || exit 1
    fi
    local variant
    for variant in websys gloo; do
        _browser_step "build the $variant prototype"
        _wasm_pack_build "$out/$variant" seqsync_wasm --no-default-features --features "$variant" || exit 1
        # The bench page also measures the bare Sequencer: the package's module of it.
        cp sdk-wasm/js/seqsync.js sdk-wasm/js/shared.js sdk-wasm/pkg/sequencer.js \
            sdk-wasm/pkg/seqsync_sequencer.js sdk-wasm/pkg/seqsync_sequencer_bg.wasm "$out/$variant/" || exit 1
    done
    for variant in websys gloo; do
        _browser_step "$variant prototype: per message, in the same page as the package's client"
        node tests/browser/bench.mjs "$out/$variant" || exit 1
        _browser_step "$variant prototype: module size (with the package's Client still in it)"
        node tests/browser/size.mjs "$out/$variant" || exit 1
    done
)
