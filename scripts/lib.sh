# Shared helpers for the project's scripts. Every installer is idempotent:
# it checks first and installs only what is missing.

step() {
    printf '\n==> %s\n' "$*"
}

ensure_rust_components() {
    local installed
    installed=$(rustup component list --installed 2>/dev/null || true)
    for component in rustfmt clippy; do
        if ! grep -q "^${component}" <<<"$installed"; then
            rustup component add "$component"
        fi
    done
}

ensure_wasm_target() {
    if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
        rustup target add wasm32-unknown-unknown
    fi
}
