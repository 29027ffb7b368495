#!/usr/bin/env bash
# The Strongroom test command:  bash scripts/test.sh [extra cargo-nextest args]
#
# Idempotent. On a fresh Debian 12 machine (as root) it installs PostgreSQL, headless Chromium and nginx,
# starts the local cluster, creates the `strongroom` role and `strongroom_test` database, installs
# the interop npm packages (if interop/ exists) and runs the whole workspace under cargo-nextest
# (profile `ci` from .config/nextest.toml). On a machine where all that is already in place it
# just starts what is not running and runs the tests.
#
# Environment:
#   STRONGROOM_TEST_PG_URL   if already set, that database is used and no local PostgreSQL set-up
#                            is done.
#   NEXTEST_PROFILE          nextest profile (default: ci).
#   SETUP_ONLY               when set, stop after installing and starting the services.
#
# Extra arguments are passed to `cargo nextest run`, e.g. a filter:
#   bash scripts/test.sh -E 'binary(requirements_map)'
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

log() { printf '[test.sh] %s\n' "$*" >&2; }
die() {
    log "ERROR: $*"
    exit 1
}

# Run a command as root (directly, or through sudo when available).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo "$@"
    else
        return 127
    fi
}

# Run a command as the postgres OS user, from / (postgres may not be able to read the cwd).
as_postgres() {
    if [ "$(id -un)" = postgres ]; then
        (cd / && "$@")
    elif [ "$(id -u)" -eq 0 ]; then
        (cd / && su postgres -s /bin/sh -c "$(printf '%q ' "$@")")
    elif command -v sudo >/dev/null 2>&1; then
        (cd / && sudo -u postgres "$@")
    else
        return 127
    fi
}

# ---------------------------------------------------------------------------------------------
# 1. System packages: PostgreSQL server, Chromium + chromedriver (one apt-get call, only if needed)
# ---------------------------------------------------------------------------------------------
pg_server_installed() {
    command -v pg_ctlcluster >/dev/null 2>&1 &&
        compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

chromium_installed() {
    { command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; } &&
        command -v chromedriver >/dev/null 2>&1
}

install_packages() {
    local pkgs=()
    if [ -z "${STRONGROOM_TEST_PG_URL:-}" ] && ! pg_server_installed; then
        pkgs+=(postgresql)
    fi
    if ! chromium_installed; then
        pkgs+=(chromium chromium-driver)
    fi
    # The TLS-terminating proxy test (tests/tests/nginx_proxy.rs) runs its own nginx.
    if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
        pkgs+=(nginx)
    fi
    if [ "${#pkgs[@]}" -eq 0 ]; then
        return 0
    fi

    if ! command -v apt-get >/dev/null 2>&1; then
        log "WARNING: missing ${pkgs[*]} and no apt-get here; install them yourself"
        return 0
    fi
    log "installing ${pkgs[*]} (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get update -q ||
        die "apt-get update failed (need root or sudo to install ${pkgs[*]})"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        --no-install-recommends -o Dpkg::Use-Pty=0 "${pkgs[@]}" ||
        die "apt-get install ${pkgs[*]} failed"
}

# ---------------------------------------------------------------------------------------------
# 2. PostgreSQL cluster, role and database
# ---------------------------------------------------------------------------------------------
PG_PORT=5432

setup_postgres() {
    pg_server_installed || die "PostgreSQL server is not installed"

    # Newest major version with a server installed, e.g. 15 on Debian 12.
    local ver
    ver=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/postgres' |
        awk -F/ '{print $5}' | grep -E '^[0-9]+$' | sort -n | tail -n 1)
    [ -n "$ver" ] || die "cannot find an installed PostgreSQL major version"

    if ! pg_lsclusters -h 2>/dev/null | awk -v v="$ver" '$1 == v && $2 == "main"' | grep -q .; then
        log "creating PostgreSQL $ver cluster 'main'"
        as_root pg_createcluster "$ver" main || die "pg_createcluster $ver main failed"
    fi

    local line status
    line=$(pg_lsclusters -h | awk -v v="$ver" '$1 == v && $2 == "main"')
    PG_PORT=$(awk '{print $3}' <<<"$line")
    status=$(awk '{print $4}' <<<"$line")

    if [ "$status" != online ]; then
        log "starting PostgreSQL $ver/main on port $PG_PORT"
        # The socket directory lives on /run, which containers may have wiped.
        as_root install -d -o postgres -g postgres -m 2775 /var/run/postgresql || true
        as_root pg_ctlcluster "$ver" main start ||
            die "pg_ctlcluster $ver main start failed (see /var/log/postgresql/postgresql-$ver-main.log)"
    else
        log "PostgreSQL $ver/main already running on port $PG_PORT"
    fi

    local i
    for i in $(seq 1 60); do
        if pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; then
            break
        fi
        if [ "$i" -eq 60 ]; then
            die "PostgreSQL did not accept connections on 127.0.0.1:$PG_PORT within 30 s"
        fi
        sleep 0.5
    done

    log "ensuring role 'strongroom' and database 'strongroom_test'"
    as_postgres psql -X -q -v ON_ERROR_STOP=1 -p "$PG_PORT" -d postgres <<'SQL' >/dev/null ||
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'strongroom') THEN
        CREATE ROLE strongroom LOGIN CREATEDB PASSWORD 'strongroom';
    ELSE
        ALTER ROLE strongroom LOGIN CREATEDB PASSWORD 'strongroom';
    END IF;
END
$$;
SELECT 'CREATE DATABASE strongroom_test OWNER strongroom'
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = 'strongroom_test')
\gexec
ALTER DATABASE strongroom_test OWNER TO strongroom;
SQL
        die "could not create the strongroom role/database (as the postgres user)"

    # Check that the URL the tests will use really works (TCP + password).
    PGPASSWORD=strongroom psql -X -q -h 127.0.0.1 -p "$PG_PORT" -U strongroom -d strongroom_test \
        -c 'SELECT 1' >/dev/null ||
        die "cannot connect as strongroom@127.0.0.1:$PG_PORT/strongroom_test"
}

# ---------------------------------------------------------------------------------------------
install_packages

if [ -n "${STRONGROOM_TEST_PG_URL:-}" ]; then
    log "using the database from STRONGROOM_TEST_PG_URL; skipping local PostgreSQL set-up"
else
    setup_postgres
    export STRONGROOM_TEST_PG_URL="postgres://strongroom:strongroom@127.0.0.1:${PG_PORT}/strongroom_test"
fi
log "STRONGROOM_TEST_PG_URL=${STRONGROOM_TEST_PG_URL}"

# Headless Chromium for browser tests (only set when not already chosen by the caller).
if [ -z "${CHROME_BIN:-}" ]; then
    CHROME_BIN=$(command -v chromium || command -v chromium-browser || true)
    if [ -n "$CHROME_BIN" ]; then export CHROME_BIN; else unset CHROME_BIN; fi
fi
if [ -z "${CHROMEDRIVER:-}" ]; then
    CHROMEDRIVER=$(command -v chromedriver || true)
    if [ -n "$CHROMEDRIVER" ]; then export CHROMEDRIVER; else unset CHROMEDRIVER; fi
fi

# SETUP_ONLY=1: stop after the set-up (bench/run.sh uses this for PostgreSQL).
if [ -n "${SETUP_ONLY:-}" ]; then
    log "set-up done (SETUP_ONLY)"
    exit 0
fi

if [ -f interop/package.json ]; then
    log "installing interop npm packages (npm ci)"
    (cd interop && npm ci --no-audit --no-fund)
fi

command -v cargo-nextest >/dev/null 2>&1 || cargo nextest --version >/dev/null 2>&1 ||
    die "cargo-nextest is not installed (cargo install cargo-nextest --locked)"

profile="${NEXTEST_PROFILE:-ci}"
log "cargo nextest run --workspace --all-targets --profile $profile $*"
exec cargo nextest run --workspace --all-targets --profile "$profile" "$@"
