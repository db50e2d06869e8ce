#!/usr/bin/env bash
# Entrypoint of hodei/postgres:15, a reduced copy of the official postgres
# image's docker-entrypoint.sh with the same contract:
#   POSTGRES_USER (default postgres), POSTGRES_PASSWORD (required unless
#   POSTGRES_HOST_AUTH_METHOD=trust), POSTGRES_DB (default $POSTGRES_USER),
#   POSTGRES_INITDB_ARGS, POSTGRES_INITDB_WALDIR, POSTGRES_HOST_AUTH_METHOD
#   (default scram-sha-256), PGDATA (default /var/lib/postgresql/data),
#   /docker-entrypoint-initdb.d/*.sh|*.sql|*.sql.gz run once after initdb.
# Addition for host networking: PGPORT or POSTGRES_PORT picks the port
# (postgres, psql and pg_isready all read PGPORT).
set -Eeo pipefail

: "${PGDATA:=/var/lib/postgresql/data}"
if [ -z "${PGPORT:-}" ] && [ -n "${POSTGRES_PORT:-}" ]; then PGPORT="$POSTGRES_PORT"; fi
: "${PGPORT:=5432}"
export PGDATA PGPORT

# file_env VAR [DEFAULT]: allow VAR_FILE (docker secrets) like the official image
file_env() {
    local var="$1" fileVar="${1}_FILE" def="${2:-}"
    if [ "${!var:-}" ] && [ "${!fileVar:-}" ]; then
        echo >&2 "error: both $var and $fileVar are set (but are exclusive)"
        exit 1
    fi
    local val="$def"
    if [ "${!var:-}" ]; then
        val="${!var}"
    elif [ "${!fileVar:-}" ]; then
        val="$(<"${!fileVar}")"
    fi
    export "$var"="$val"
    unset "$fileVar"
}

docker_setup_env() {
    file_env 'POSTGRES_PASSWORD'
    file_env 'POSTGRES_USER' 'postgres'
    file_env 'POSTGRES_DB' "$POSTGRES_USER"
    file_env 'POSTGRES_INITDB_ARGS'
    : "${POSTGRES_HOST_AUTH_METHOD:=scram-sha-256}"
    export POSTGRES_HOST_AUTH_METHOD
    DATABASE_ALREADY_EXISTS=
    if [ -s "$PGDATA/PG_VERSION" ]; then DATABASE_ALREADY_EXISTS=true; fi
}

docker_create_db_directories() {
    local user; user="$(id -u)"
    mkdir -p "$PGDATA"
    chmod 00700 "$PGDATA" || :
    mkdir -p /var/run/postgresql || :
    chmod 03775 /var/run/postgresql || :
    if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
        mkdir -p "$POSTGRES_INITDB_WALDIR"
        [ "$user" = 0 ] && find "$POSTGRES_INITDB_WALDIR" \! -user postgres -exec chown postgres '{}' +
        chmod 700 "$POSTGRES_INITDB_WALDIR"
    fi
    if [ "$user" = 0 ]; then
        find "$PGDATA" \! -user postgres -exec chown postgres '{}' +
        find /var/run/postgresql \! -user postgres -exec chown postgres '{}' +
    fi
}

docker_verify_minimum_env() {
    if [ -z "${POSTGRES_PASSWORD:-}" ] && [ "$POSTGRES_HOST_AUTH_METHOD" != trust ]; then
        cat >&2 <<'EOE'
Error: Database is uninitialized and superuser password is not specified.
       You must specify POSTGRES_PASSWORD to a non-empty value for the
       superuser. For example, "-e POSTGRES_PASSWORD=password" on "docker run".

       You may also use "POSTGRES_HOST_AUTH_METHOD=trust" to allow all
       connections without a password. This is *not* recommended.
EOE
        exit 1
    fi
    if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
        echo >&2 'WARNING: POSTGRES_HOST_AUTH_METHOD has been set to "trust". This will allow'
        echo >&2 '         anyone with access to the Postgres port to access your database'
        echo >&2 '         without a password, even if POSTGRES_PASSWORD is set.'
    fi
}

docker_init_database_dir() {
    if [ -n "${POSTGRES_INITDB_WALDIR:-}" ]; then
        set -- --waldir "$POSTGRES_INITDB_WALDIR" "$@"
    fi
    # Host networking: 127.0.0.1 inside is the host's loopback, so unlike the
    # official image (whose initdb default trusts loopback TCP) every TCP
    # connection needs the password; the unix socket stays on trust.
    if [[ " ${POSTGRES_INITDB_ARGS:-} " != *" --auth"* && " ${POSTGRES_INITDB_ARGS:-} " != *" -A"* ]]; then
        set -- --auth-local=trust --auth-host="$POSTGRES_HOST_AUTH_METHOD" "$@"
    fi
    # shellcheck disable=SC2086  # POSTGRES_INITDB_ARGS is word-split on purpose
    initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
        $POSTGRES_INITDB_ARGS "$@"
}

pg_setup_hba_conf() {
    # initdb leaves local (socket) connections on trust; TCP from anywhere
    # needs the password (scram-sha-256), exactly as the official image.
    {
        printf '\n'
        if [ "$POSTGRES_HOST_AUTH_METHOD" = trust ]; then
            printf '# warning trust is enabled for all connections\n'
        fi
        printf 'host all all all %s\n' "$POSTGRES_HOST_AUTH_METHOD"
    } >>"$PGDATA/pg_hba.conf"
}

docker_temp_server_start() {
    # socket only while initialising, so nobody connects to a half-made DB
    PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" \
        -o "-c listen_addresses='' -p $PGPORT" -w start
}

docker_temp_server_stop() {
    PGUSER="$POSTGRES_USER" pg_ctl -D "$PGDATA" -m fast -w stop
}

docker_process_sql() {
    local query_runner=(psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --no-password --no-psqlrc)
    if [ -n "${POSTGRES_DB:-}" ]; then query_runner+=(--dbname "$POSTGRES_DB"); fi
    PGHOST= PGHOSTADDR= "${query_runner[@]}" "$@"
}

docker_setup_db() {
    local exists
    exists="$(POSTGRES_DB= docker_process_sql --dbname postgres --set db="$POSTGRES_DB" --tuples-only <<'EOSQL'
SELECT 1 FROM pg_database WHERE datname = :'db' ;
EOSQL
)"
    if [ -z "$exists" ]; then
        POSTGRES_DB= docker_process_sql --dbname postgres --set db="$POSTGRES_DB" <<'EOSQL'
CREATE DATABASE :"db" ;
EOSQL
        printf '\n'
    fi
}

docker_process_init_files() {
    local f
    printf '\n'
    for f; do
        case "$f" in
            *.sh)
                if [ -x "$f" ]; then
                    printf '%s: running %s\n' "$0" "$f"; "$f"
                else
                    printf '%s: sourcing %s\n' "$0" "$f"; . "$f"
                fi ;;
            *.sql)    printf '%s: running %s\n' "$0" "$f"; docker_process_sql -f "$f"; printf '\n' ;;
            *.sql.gz) printf '%s: running %s\n' "$0" "$f"; gunzip -c "$f" | docker_process_sql; printf '\n' ;;
            *)        printf '%s: ignoring %s\n' "$0" "$f" ;;
        esac
        printf '\n'
    done
}

_pg_want_help() {
    local arg
    for arg; do
        case "$arg" in
            -'?'|--help|--describe-config|-V|--version) return 0 ;;
        esac
    done
    return 1
}

_main() {
    # `docker run hodei/postgres:15 -c fsync=off` → postgres -c fsync=off
    if [ "${1:0:1}" = '-' ]; then set -- postgres "$@"; fi

    if [ "$1" = postgres ] && ! _pg_want_help "$@"; then
        docker_setup_env
        docker_create_db_directories
        if [ "$(id -u)" = 0 ]; then
            # re-run this script as the postgres user (official image uses gosu)
            HOME=/var/lib/postgresql exec setpriv --reuid=postgres --regid=postgres --init-groups "$BASH_SOURCE" "$@"
        fi

        if [ -z "$DATABASE_ALREADY_EXISTS" ]; then
            docker_verify_minimum_env
            ls /docker-entrypoint-initdb.d/ >/dev/null
            docker_init_database_dir
            pg_setup_hba_conf
            export PGPASSWORD="${PGPASSWORD:-$POSTGRES_PASSWORD}"
            docker_temp_server_start "$@"
            docker_setup_db
            shopt -s nullglob
            docker_process_init_files /docker-entrypoint-initdb.d/*
            shopt -u nullglob
            docker_temp_server_stop
            unset PGPASSWORD
            printf '\nPostgreSQL init process complete; ready for start up.\n\n'
        else
            printf '\nPostgreSQL Database directory appears to contain a database; Skipping initialization\n\n'
        fi
        exec postgres -p "$PGPORT" "${@:2}"
    fi

    exec "$@"
}

_main "$@"
