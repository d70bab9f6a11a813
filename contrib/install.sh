#!/bin/sh
# Installs ingestor as a per-user service that follows both agents' logs
# (~/centralized-logs/{claude,codex}/sse_lines.jsonl) into ~/centralized-logs/agents.db.
#
#   contrib/install.sh systemd|launchd [--bin PATH] [--print] [--no-start]
#
# --bin PATH   the ingestor binary (default: the one on PATH), written as an absolute path
# --print      print the filled-in file on stdout and change nothing
# --no-start   write the file but do not ask systemd/launchd to load it
#
# The templates beside this script hold @INGESTOR@ and @HOME@; nothing else is changed.
set -eu

die() {
    printf 'install.sh: %s\n' "$*" >&2
    exit 1
}
usage() {
    die "usage: contrib/install.sh systemd|launchd [--bin PATH] [--print] [--no-start]"
}

[ $# -ge 1 ] || usage
kind=$1
shift
bin= print=0 start=1
while [ $# -gt 0 ]; do
    case $1 in
    --bin) [ $# -ge 2 ] || usage; bin=$2; shift 2 ;;
    --print) print=1; shift ;;
    --no-start) start=0; shift ;;
    *) usage ;;
    esac
done

here=$(cd "$(dirname "$0")" && pwd)
home=${HOME:?HOME is not set}
case $kind in
systemd)
    template=$here/systemd/ingestor.service
    dest=${XDG_CONFIG_HOME:-$home/.config}/systemd/user/ingestor.service
    ;;
launchd)
    template=$here/launchd/local.ingestor.plist
    dest=$home/Library/LaunchAgents/local.ingestor.plist
    ;;
*) usage ;;
esac

if [ -z "$bin" ]; then
    bin=$(command -v ingestor) ||
        die "ingestor is not on PATH: install it (cargo install --path .) or give --bin PATH"
fi
case $bin in
/*) ;;
*) bin=$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin") ;;
esac
[ -f "$bin" ] && [ -x "$bin" ] || die "$bin is not an executable file"

# Each format quotes differently; refuse what it cannot hold rather than write a broken file.
for p in "$bin" "$home"; do
    case $p in
    *'
'*) die "a path with a line break cannot go into a service file: $p" ;;
    esac
    if [ "$kind" = systemd ]; then
        case $p in
        *'"'* | *\\*) die "a path with \" or \\ cannot go into a systemd unit: $p" ;;
        esac
    fi
done

# The value as the format writes it (systemd: % is a specifier; plist: XML), then escaped for
# sed's replacement text.
format() {
    case $kind in
    systemd) printf '%s' "$1" | sed -e 's/%/%%/g' -e 's/\$/$$/g' ;;
    launchd) printf '%s' "$1" | sed -e 's/&/\&amp;/g' -e 's/</\&lt;/g' -e 's/>/\&gt;/g' ;;
    esac
}
for_sed() {
    printf '%s' "$1" | sed -e 's/[\\&|]/\\&/g'
}
fill() {
    sed -e "s|@INGESTOR@|$(for_sed "$(format "$bin")")|g" \
        -e "s|@HOME@|$(for_sed "$(format "$home")")|g" "$template"
}

if [ "$print" = 1 ]; then
    fill
    exit 0
fi

# The database's folder must exist; the logs' folders need not (their files are waited for).
mkdir -p "$home/centralized-logs" "$(dirname "$dest")"
[ "$kind" = launchd ] && mkdir -p "$home/Library/Logs"
fill >"$dest.tmp"
mv "$dest.tmp" "$dest"
echo "wrote $dest"

if [ "$start" = 0 ]; then
    exit 0
fi
case $kind in
systemd)
    systemctl --user daemon-reload
    systemctl --user enable ingestor.service
    # restart, not start: a running service picks up a new binary or unit.
    systemctl --user restart ingestor.service
    echo "started; its log: journalctl --user -u ingestor -f"
    ;;
launchd)
    uid=$(id -u)
    launchctl bootout "gui/$uid/local.ingestor" 2>/dev/null || true
    launchctl bootstrap "gui/$uid" "$dest"
    echo "started; its log: tail -f ~/Library/Logs/ingestor.log"
    ;;
esac
echo "how far it is: ingestor status --db ~/centralized-logs/agents.db"
