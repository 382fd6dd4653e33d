#!/usr/bin/env bash
# The project's own VO server: GAVO DaCHS + PostgreSQL on 127.0.0.1, publishing synthetic
# LAMOST spectra over SSAP, TAP (lamost.data, lamost.simbad_like, ivoa.obscore), DataLink
# and plain downloads (accref / access_url: the original FITS files), and an Ondřejov-like
# CCD700 archive (resources/dachs/ccd700.rd: SSAP rows are SDM VOTables the server writes,
# DataLink gives the SDM FITS and the native files, TAP ccd700.data).
#
# Usage (as root, Debian 12, no systemd needed; every subcommand is idempotent):
#   scripts/dachs.sh install          apt-get install postgresql gavodachs2-server stilts curl,
#                                     write /etc/gavo.rc, seed the offline UAT vocabulary
#   scripts/dachs.sh start            start PostgreSQL and DaCHS, wait until TAP + SSA answer
#   scripts/dachs.sh import N [SEED]  N synthetic spectra (vo_al.core.demo.datasets.make_pool)
#                                     replace /var/gavo/inputs/lamost/data; dachs imp q
#   scripts/dachs.sh import-ccd700 N [SEED]
#                                     N synthetic CCD700 spectra (resources/dachs/
#                                     make_ccd700_archive.py; names from the Ondřejov set's
#                                     labels.csv when present) replace
#                                     /var/gavo/inputs/ccd700/data; dachs imp q there
#   scripts/dachs.sh stop [--all]     stop DaCHS (--all: PostgreSQL too)
#   scripts/dachs.sh status           what runs, what is imported (exit 0 only when serving)
#   scripts/dachs.sh kill             SIGKILL the DaCHS server (crash tests); `start` recovers
#   scripts/dachs.sh endpoints        print the service URLs
#
# Environment: VO_AL_DACHS_PORT (default 8080), VO_AL_PYTHON (default: the repo's .venv python),
#              VO_AL_DACHS_QUIET=1 to silence the step log, VO_AL_ONDREJOV_LABELS (the labels.csv
#              the CCD700 names come from; default $VO_AL_REAL_DATA/ondrejov/labels.csv, else
#              ../shared/data/real/ondrejov/labels.csv
#              beside the repository, synthetic names when absent).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PORT=${VO_AL_DACHS_PORT:-8080}
HOST=127.0.0.1
BASE="http://$HOST:$PORT"
GAVO=/var/gavo
INPUTS=$GAVO/inputs/lamost
PIDFILE=$GAVO/state/web.pid
AUTHORITY=vo-al.test
SSAP_URL="$BASE/lamost/q/ssa/ssap.xml"
CCD700=$GAVO/inputs/ccd700
CCD700_SSAP_URL="$BASE/ccd700/q/ssa/ssap.xml"
TAP_URL="$BASE/tap"
export DEBIAN_FRONTEND=noninteractive

T0=$(date +%s)
log() { [ "${VO_AL_DACHS_QUIET:-0}" = 1 ] || echo "[dachs.sh $(date +%T) +$(( $(date +%s) - T0 ))s] $*" >&2; }
die() { echo "dachs.sh: ERROR: $*" >&2; exit 1; }

# replace_data DIR NEW TAG: NEW (generated files + truth.csv) becomes DIR/data and DIR/truth.csv
# for DaCHS to read; the previous data go to $GAVO/tmp and are deleted in the background
replace_data() {
    local dir=$1 new=$2 tag=$3
    log "replace $dir/data"
    rm -f "$dir/imported.json"
    mv "$new/truth.csv" "$dir/truth.csv"
    if [ -d "$dir/data" ]; then mv "$dir/data" "$GAVO/tmp/vo-al-old-$tag.$$"; fi
    mv "$new" "$dir/data"
    rm -rf "$GAVO"/tmp/vo-al-old-"$tag".* &     # old files go in the background
    chown -R dachsroot:gavo "$dir/data" "$dir/truth.csv"
    chmod -R a+rX "$dir/data" "$dir/truth.csv"
}

need_root() {
    [ "$(id -u)" = 0 ] || die "must run as root (it installs packages and runs PostgreSQL/DaCHS)"
}

pg_version() {
    ls /usr/lib/postgresql 2>/dev/null | sort -n | tail -1
}

start_postgres() {
    local v
    v=$(pg_version)
    [ -n "$v" ] || die "PostgreSQL is not installed: run 'scripts/dachs.sh install'"
    if ! pg_isready -q -h /var/run/postgresql 2>/dev/null; then
        log "start PostgreSQL $v cluster 'main' (pg_ctlcluster; no systemd here)"
        # 'already running' exits 2: fine; a real failure shows in pg_isready below
        pg_ctlcluster "$v" main start 2>&1 | grep -v "already running" >&2 || true
    fi
    pg_isready -q -t 30 -h /var/run/postgresql \
        || die "PostgreSQL $v does not accept connections (see /var/log/postgresql/postgresql-$v-main.log)"
}

pkg_installed() {
    [ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" = "install ok installed" ]
}

dachs_installed() {
    command -v dachs >/dev/null 2>&1 && pkg_installed gavodachs2-server
}

config_ok() {
    grep -q "written by vo-al" /etc/gavo.rc 2>/dev/null && grep -q "serverPort: $PORT$" /etc/gavo.rc
}

server_pid() {
    # the pid of a live DaCHS server, or nothing
    local pid
    [ -f "$PIDFILE" ] || return 0
    pid=$(tr -dc 0-9 < "$PIDFILE")
    [ -n "$pid" ] || return 0
    # alive and not a zombie (after a SIGKILL the process lingers as one until reaped)
    local state
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)
    if [ -n "$state" ] && [ "$state" != Z ]; then echo "$pid"; fi
}

answers() {
    curl -sf -m 10 -o /dev/null "$1"
}

write_config() {
    log "write /etc/gavo.rc (bindAddress $HOST, port $PORT, authority $AUTHORITY)"
    cat > /etc/gavo.rc <<EOF
# written by vo-al scripts/dachs.sh: a loopback-only test data centre
[web]
bindAddress: $HOST
serverPort: $PORT
serverURL: $BASE
sitename: vo-al synthetic LAMOST data centre

[ivoa]
authority: $AUTHORITY
EOF
}

seed_uat() {
    # DaCHS fetches the IVOA UAT vocabulary when it validates 'subject' metadata; offline here,
    # so seed its cache with the one term our RD uses (VO-STACK pitfall 2). Only after the
    # package made /var/gavo/cache: a root-owned cache dir breaks the postinst's 'dachs init'.
    local f="$GAVO/cache/http:=2F=2Fwww.ivoa.net=2Frdf=2Fuat"
    if [ ! -s "$f" ]; then log "seed the offline UAT vocabulary stub in $GAVO/cache"; fi
    install -d -o dachsroot -g gavo -m 2775 "$GAVO/cache"
    [ -s "$f" ] || echo '{"uri": "http://www.ivoa.net/rdf/uat", "flavour": "RDF Class", "terms": {"spectroscopy": {"label": "Spectroscopy", "description": "", "wider": [], "narrower": []}}}' > "$f"
    chown dachsroot:gavo "$f"
    chmod 664 "$f"
}

cmd_install() {
    need_root
    command -v apt-get >/dev/null || die "needs Debian/Ubuntu (apt-get not found)"
    local pkgs="postgresql gavodachs2-server stilts curl" missing="" p
    for p in gavodachs2-server stilts curl; do
        pkg_installed "$p" || missing="$missing $p"
    done
    if ! pkg_installed postgresql; then
        log "apt-get install postgresql"
        apt-get -o DPkg::Lock::Timeout=900 install -y -q postgresql >/dev/null 2>&1 \
            || { log "apt-get update (package lists missing or stale)"; apt-get -o DPkg::Lock::Timeout=900 update -q >/dev/null;
                 apt-get -o DPkg::Lock::Timeout=900 install -y -q postgresql >/dev/null; } \
            || die "apt-get install postgresql failed"
    fi
    # gavodachs2-server's postinst runs 'dachs init', which needs a running PostgreSQL:
    # start the cluster FIRST (VO-STACK pitfall 1)
    start_postgres
    config_ok || write_config
    # pgsphere 1.1.1 (Debian 12) no longer installs on PostgreSQL >= 15.20 as shipped; patch its
    # extension script before gavodachs2-server's postinst runs 'CREATE EXTENSION pg_sphere'
    local v
    v=$(pg_version)
    if ! pkg_installed "postgresql-$v-pgsphere"; then
        log "apt-get install postgresql-$v-pgsphere"
        apt-get -o DPkg::Lock::Timeout=900 install -y -q "postgresql-$v-pgsphere" >/dev/null \
            || die "apt-get install postgresql-$v-pgsphere failed"
    fi
    for f in /usr/share/postgresql/"$v"/extension/pg_sphere--*.sql; do
        [ -e "$f" ] && log "$(python3 "$REPO/scripts/patch_pgsphere.py" "$f")"
    done
    if [ -n "$missing" ]; then
        log "apt-get install$missing (gavodachs2-server: ~1 min, ~570 MB)"
        if ! apt-get -o DPkg::Lock::Timeout=900 install -y -q $missing >/tmp/vo-al-dachs-apt.log 2>&1; then
            local policy
            policy=$(apt-cache policy gavodachs2-server 2>/dev/null || true)
            if ! grep -q "Candidate: [0-9]" <<<"$policy"; then
                log "apt-get update (no candidate for gavodachs2-server)"
                apt-get -o DPkg::Lock::Timeout=900 update -q >/dev/null
            fi
            log "apt-get install failed once (usually the postinst's dachs init): dpkg --configure -a, retry"
            start_postgres
            # a cache dir left root-owned by an earlier run makes 'dachs init' fail
            if [ -d "$GAVO/cache" ] && getent group gavo >/dev/null; then
                chown dachsroot:gavo "$GAVO/cache" 2>/dev/null || true
                chmod 2775 "$GAVO/cache"
            fi
            dpkg --configure -a >>/tmp/vo-al-dachs-apt.log 2>&1 || true
            apt-get -o DPkg::Lock::Timeout=900 install -y -q $missing >>/tmp/vo-al-dachs-apt.log 2>&1 \
                || { tail -30 /tmp/vo-al-dachs-apt.log >&2; die "apt-get install$missing failed (log: /tmp/vo-al-dachs-apt.log)"; }
        fi
    else
        log "packages already installed: $pkgs"
    fi
    dachs_installed || die "gavodachs2-server did not install (see /tmp/vo-al-dachs-apt.log)"
    config_ok || write_config       # the package may ship its own
    seed_uat
    # make sure 'dachs init' went through (idempotent; a failed postinst may have skipped it)
    local has_db
    has_db=$(su -s /bin/sh postgres -c "psql -tAc \"SELECT 1 FROM pg_database WHERE datname='gavo'\"" || true)
    if [ "$has_db" != 1 ]; then
        log "dachs init (database 'gavo' missing)"
        dachs init >/dev/null || die "dachs init failed"
    fi
    log "installed: $(dpkg-query -W -f='gavodachs2-server ${Version}' gavodachs2-server), $(dpkg-query -W -f='stilts ${Version}' stilts)"
}

cmd_start() {
    need_root
    dachs_installed || die "DaCHS is not installed: run 'scripts/dachs.sh install' first"
    start_postgres
    config_ok || write_config
    if imported && rd_changed; then
        log "resources/dachs changed since the last import: re-import the same spectra"
        install_rd
        dachs_imp_q "RD update, $(n_imported) files"
        [ -z "$(server_pid)" ] || (cd /tmp && dachs serve reload) >/dev/null 2>&1 || true
    fi
    if ccd700_imported && ccd700_stale; then
        log "resources/dachs/ccd700.rd or the server URL changed since the CCD700 import: re-import"
        install_ccd700_rd
        dachs_imp_in "$CCD700" "CCD700 RD update, $(ccd700_n) files"
        write_ccd700_state "$(ccd700_field n)" "$(ccd700_field seed)" "$(ccd700_field names)"
        [ -z "$(server_pid)" ] || (cd /tmp && dachs serve reload) >/dev/null 2>&1 || true
    fi
    local pid
    pid=$(server_pid)
    if [ -n "$pid" ] && answers "$TAP_URL/capabilities"; then
        log "DaCHS already serving (pid $pid)"
    else
        if [ -n "$pid" ]; then
            log "DaCHS pid $pid does not answer: stop it"
            dachs serve stop >/dev/null 2>&1 || kill -9 "$pid" 2>/dev/null || true
        fi
        if [ -f "$PIDFILE" ]; then
            log "remove stale pid file $PIDFILE (server was killed)"
            rm -f "$PIDFILE"
        fi
        if curl -s -m 2 -o /dev/null "$BASE/" 2>/dev/null; then
            die "something else answers on $BASE (not our DaCHS): free port $PORT or set VO_AL_DACHS_PORT"
        fi
        log "dachs serve start ($BASE)"
        (cd /tmp && dachs serve start) >/tmp/vo-al-dachs-serve.log 2>&1 \
            || { cat /tmp/vo-al-dachs-serve.log >&2; die "dachs serve start failed (logs: $GAVO/logs/)"; }
    fi
    local i
    for i in $(seq 1 150); do answers "$TAP_URL/capabilities" && break; sleep 0.2; done
    answers "$TAP_URL/capabilities" \
        || die "DaCHS does not answer $TAP_URL/capabilities after 30 s (logs: $GAVO/logs/dcErrors, serverStderr)"
    if imported; then
        for i in $(seq 1 50); do answers "$SSAP_URL?REQUEST=queryData&MAXREC=1" && break; sleep 0.2; done
        answers "$SSAP_URL?REQUEST=queryData&MAXREC=1" \
            || die "TAP answers but the SSA service $SSAP_URL does not (dachs imp q? logs: $GAVO/logs/dcErrors)"
        log "serving $(n_imported) spectra"
    else
        log "WARNING: no spectra imported yet: run 'scripts/dachs.sh import N'"
    fi
    if ccd700_imported; then
        for i in $(seq 1 50); do answers "$CCD700_SSAP_URL?REQUEST=queryData&MAXREC=1" && break; sleep 0.2; done
        answers "$CCD700_SSAP_URL?REQUEST=queryData&MAXREC=1" \
            || die "the CCD700 SSA service $CCD700_SSAP_URL does not answer (logs: $GAVO/logs/dcErrors)"
        log "serving $(ccd700_n) CCD700 spectra"
    fi
    cmd_endpoints
}

imported() {
    [ -f "$INPUTS/imported.json" ]
}

n_imported() {
    sed -n 's/.*"n": *\([0-9]*\).*/\1/p' "$INPUTS/imported.json" 2>/dev/null
}

cmd_endpoints() {
    echo "SSAP     $SSAP_URL"
    echo "TAP      $TAP_URL   (tables lamost.data, lamost.simbad_like, ivoa.obscore, ccd700.data)"
    echo "DataLink $BASE/lamost/q/sdl/dlmeta?ID=<ssa_pubDID>"
    echo "Truth    $INPUTS/truth.csv"
    echo "CCD700 SSAP      $CCD700_SSAP_URL   (FORMAT=compliant: SDM VOTables)"
    echo "CCD700 DataLink  $BASE/ccd700/q/sdl/dlmeta?ID=ivo://$AUTHORITY/ccd700/NAME"
    echo "CCD700 SDM FITS  $BASE/ccd700/q/sdl/dlget?ID=ivo://$AUTHORITY/ccd700/NAME&FORMAT=application/fits"
    echo "CCD700 SDM VOT   $BASE/getproduct/ccd700/sdm/NAME.vot   (redirects to dlget, FORMAT=application/x-votable%2Bxml)"
    echo "CCD700 native    $BASE/getproduct/ccd700/data/NAME.fits"
    echo "CCD700 truth     $CCD700/truth.csv   (id,label: 0 single peak, 1 absorption, 3 double peak)"
}

cmd_import() {
    need_root
    local n=${1:-} seed=${2:-1}
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "usage: scripts/dachs.sh import N [SEED] (N >= 1)"
    [[ "$seed" =~ ^[0-9]+$ ]] || die "SEED must be a non-negative integer"
    dachs_installed || die "DaCHS is not installed: run 'scripts/dachs.sh install' first"
    local py=${VO_AL_PYTHON:-$REPO/.venv/bin/python}
    [ -x "$py" ] || die "no Python at $py: run scripts/bootstrap.sh (or set VO_AL_PYTHON)"
    start_postgres
    install -d -o dachsroot -g gavo "$INPUTS"
    local new="$INPUTS/data.new"
    rm -rf "$new" "$INPUTS/data.old"
    log "generate $n synthetic LAMOST spectra (seed $seed) with vo_al.core.demo.datasets.make_pool"
    "$py" - "$new" "$n" "$seed" <<'PY' || die "generating the spectra failed"
import sys
from vo_al.core.demo import make_pool
# DaCHS's fitsProdGrammar reads primary-HDU image files only: no .gz, no table layout
make_pool(sys.argv[1], int(sys.argv[2]), seed=int(sys.argv[3]), gz_fraction=0.0, table_fraction=0.0)
PY
    replace_data "$INPUTS" "$new" data
    install_rd
    if [ ! -f "$GAVO/state/vo-al-obscore-imported" ]; then
        log "dachs imp //obscore (once)"
        (cd "$INPUTS" && dachs imp //obscore >/tmp/vo-al-dachs-imp.log 2>&1) \
            || { tail -20 /tmp/vo-al-dachs-imp.log >&2; die "dachs imp //obscore failed"; }
        touch "$GAVO/state/vo-al-obscore-imported"
    fi
    dachs_imp_q "$n files"
    local rows
    rows=$(su -s /bin/sh postgres -c "psql -d gavo -tAc 'SELECT count(*) FROM lamost.data'")
    [ "$rows" = "$n" ] || die "imported $rows rows into lamost.data, expected $n (log: /tmp/vo-al-dachs-imp.log)"
    printf '{"n": %s, "seed": %s, "imported_at": "%s", "data": "%s", "truth": "%s"}\n' \
        "$n" "$seed" "$(date -u +%FT%TZ)" "$INPUTS/data" "$INPUTS/truth.csv" > "$INPUTS/imported.json"
    if [ -n "$(server_pid)" ]; then
        log "dachs serve reload (running server picks up the new RD and tables)"
        (cd /tmp && dachs serve reload) >/dev/null 2>&1 || true
    fi
    wait
    log "imported $rows spectra into lamost.data"
}

dachs_imp_q() {
    dachs_imp_in "$INPUTS" "$1"
}

dachs_imp_in() {
    # dachs imp q in resource directory $1 ($2 says what for the log)
    log "dachs imp q in $1 ($2)"
    (cd "$1" && dachs imp q >/tmp/vo-al-dachs-imp.log 2>&1) \
        || { tail -30 /tmp/vo-al-dachs-imp.log >&2; die "dachs imp q in $1 failed (log: /tmp/vo-al-dachs-imp.log)"; }
}

rd_changed() {
    # the repository's RD or SIMBAD-like CSV differs from what was imported
    ! cmp -s "$REPO/resources/dachs/q.rd" "$INPUTS/q.rd" \
        || { [ -f "$REPO/resources/dachs/simbad_like.csv" ] \
             && ! cmp -s "$REPO/resources/dachs/simbad_like.csv" "$INPUTS/simbad_like.csv"; }
}

install_rd() {
    log "install resource descriptor $REPO/resources/dachs/q.rd -> $INPUTS/q.rd"
    [ -f "$REPO/resources/dachs/q.rd" ] || die "missing $REPO/resources/dachs/q.rd"
    install -m 644 -o dachsroot -g gavo "$REPO/resources/dachs/q.rd" "$INPUTS/q.rd"
    if [ -f "$REPO/resources/dachs/simbad_like.csv" ]; then
        install -m 644 -o dachsroot -g gavo "$REPO/resources/dachs/simbad_like.csv" "$INPUTS/simbad_like.csv"
    fi
}

# ---------------------------------------------------------------- the CCD700 archive

ccd700_imported() {
    [ -f "$CCD700/imported.json" ]
}

ccd700_field() {
    # a number or string field of $CCD700/imported.json
    sed -n "s/.*\"$1\": *\"\{0,1\}\([^\",}]*\).*/\1/p" "$CCD700/imported.json" 2>/dev/null
}

ccd700_n() {
    ccd700_field n
}

ccd700_stale() {
    # the repository's RD differs from the installed one, or the import wrote another server URL
    # into the products table (the SDM products' paths are absolute dlget URLs)
    ! cmp -s "$REPO/resources/dachs/ccd700.rd" "$CCD700/q.rd" || [ "$(ccd700_field server)" != "$BASE" ]
}

install_ccd700_rd() {
    log "install resource descriptor $REPO/resources/dachs/ccd700.rd -> $CCD700/q.rd"
    [ -f "$REPO/resources/dachs/ccd700.rd" ] || die "missing $REPO/resources/dachs/ccd700.rd"
    install -m 644 -o dachsroot -g gavo "$REPO/resources/dachs/ccd700.rd" "$CCD700/q.rd"
}

write_ccd700_state() {
    # $1 n, $2 seed, $3 where the names came from; written last: the import's atomic finish
    printf '{"n": %s, "seed": %s, "names": "%s", "server": "%s", "imported_at": "%s", "data": "%s", "truth": "%s"}\n' \
        "$1" "$2" "$3" "$BASE" "$(date -u +%FT%TZ)" "$CCD700/data" "$CCD700/truth.csv" \
        > "$CCD700/imported.json.new"
    mv "$CCD700/imported.json.new" "$CCD700/imported.json"
}

cmd_import_ccd700() {
    need_root
    local n=${1:-} seed=${2:-1}
    [[ "$n" =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ] || die "usage: scripts/dachs.sh import-ccd700 N [SEED] (N >= 1)"
    [[ "$seed" =~ ^[0-9]+$ ]] || die "SEED must be a non-negative integer"
    dachs_installed || die "DaCHS is not installed: run 'scripts/dachs.sh install' first"
    local py=${VO_AL_PYTHON:-$REPO/.venv/bin/python}
    [ -x "$py" ] || die "no Python at $py: run scripts/bootstrap.sh (or set VO_AL_PYTHON)"
    # the tests' folder of real files ($VO_AL_REAL_DATA, else ../shared/data/real) holds it
    local labels=${VO_AL_ONDREJOV_LABELS:-${VO_AL_REAL_DATA:-$REPO/../shared/data/real}/ondrejov/labels.csv}
    local names=synthetic
    local args=()
    if [ -f "$labels" ]; then
        names=$(cd "$(dirname "$labels")" && pwd)/$(basename "$labels")
        args=(--labels "$names")
    fi
    start_postgres
    install -d -o dachsroot -g gavo "$CCD700"
    local new="$CCD700/data.new"
    rm -rf "$new"
    log "generate $n synthetic CCD700 spectra (seed $seed, names: $names)"
    "$py" "$REPO/resources/dachs/make_ccd700_archive.py" "$new" "$n" "$seed" \
        --authority "$AUTHORITY" "${args[@]}" || die "generating the CCD700 spectra failed"
    replace_data "$CCD700" "$new" ccd700
    install_ccd700_rd
    dachs_imp_in "$CCD700" "$n CCD700 files"
    local rows
    rows=$(su -s /bin/sh postgres -c "psql -d gavo -tAc 'SELECT count(*) FROM ccd700.data'")
    [ "$rows" = "$n" ] || die "imported $rows rows into ccd700.data, expected $n (log: /tmp/vo-al-dachs-imp.log)"
    write_ccd700_state "$n" "$seed" "$names"
    if [ -n "$(server_pid)" ]; then
        log "dachs serve reload (running server picks up the new RD and tables)"
        (cd /tmp && dachs serve reload) >/dev/null 2>&1 || true
    fi
    wait
    log "imported $rows spectra into ccd700.data"
}

cmd_stop() {
    need_root
    if [ -n "$(server_pid)" ]; then
        log "dachs serve stop"
        (cd /tmp && dachs serve stop) >/dev/null 2>&1 || true
        local i
        for i in $(seq 1 50); do [ -z "$(server_pid)" ] && break; sleep 0.2; done
        local pid
        pid=$(server_pid)
        if [ -n "$pid" ]; then log "DaCHS pid $pid still alive: SIGKILL"; kill -9 "$pid" || true; fi
    else
        log "DaCHS is not running"
    fi
    rm -f "$PIDFILE"
    if [ "${1:-}" = "--all" ]; then
        local v
        v=$(pg_version)
        if [ -n "$v" ] && pg_isready -q -h /var/run/postgresql 2>/dev/null; then
            log "stop PostgreSQL $v"
            pg_ctlcluster "$v" main stop || true
        fi
    fi
}

cmd_kill() {
    need_root
    local pid
    pid=$(server_pid)
    if [ -z "$pid" ]; then log "no DaCHS server process to kill"; return 0; fi
    log "SIGKILL DaCHS server pid $pid"
    kill -9 "$pid"
    local i
    for i in $(seq 1 50); do [ -n "$(server_pid)" ] || break; sleep 0.1; done
}

cmd_status() {
    local pid rc=0
    if pg_isready -q -h /var/run/postgresql 2>/dev/null; then echo "postgresql: running"
    else echo "postgresql: stopped"; rc=1; fi
    pid=$(server_pid)
    if [ -n "$pid" ] && answers "$TAP_URL/capabilities"; then echo "dachs: serving on $BASE (pid $pid)"
    elif [ -n "$pid" ]; then echo "dachs: pid $pid but not answering on $BASE"; rc=1
    else echo "dachs: stopped"; rc=1; fi
    if imported; then echo "imported: $(cat "$INPUTS/imported.json")"
    else echo "imported: nothing"; rc=1; fi
    # the CCD700 archive is optional: its absence does not make the status fail
    if ccd700_imported; then echo "ccd700: $(cat "$CCD700/imported.json")"
    else echo "ccd700: nothing imported (scripts/dachs.sh import-ccd700 N [SEED])"; fi
    return $rc
}

case "${1:-}" in
    install) shift; cmd_install "$@" ;;
    start) shift; cmd_start "$@" ;;
    import) shift; cmd_import "$@" ;;
    import-ccd700) shift; cmd_import_ccd700 "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    status) shift; cmd_status "$@" ;;
    kill) shift; cmd_kill "$@" ;;
    endpoints) shift; cmd_endpoints ;;
    *) sed -n '2,27p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
