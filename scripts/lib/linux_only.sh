# Sourced first by the scripts that read /proc/PID (RSS, CPU, open files) or use GNU
# coreutils (`stat -c`, `nproc`): they measure Linux only. On macOS they stop here with one
# line instead of failing half-way; `scripts/check_macos.sh` is the macOS check.
if [ "$(uname -s)" != Linux ]; then
    echo "$(basename "$0"): Linux only (reads /proc and uses GNU stat); nothing was run" >&2
    exit 2
fi
