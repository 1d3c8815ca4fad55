#!/usr/bin/env bash
# Install, upgrade or remove the edge attendance appliance on a Debian-like
# system. Run as root from a checkout; running it again upgrades in place and
# never touches an existing config file or the data.
#
#   scripts/install.sh [--wheel FILE] [--python PYTHON]
#   scripts/install.sh --uninstall [--purge]
#
# --root DIR installs into DIR instead of / (with --no-systemctl and
# --no-user, no root is needed), for packaging and for tests.
set -euo pipefail

readonly APP=edge-agent
readonly UNITS=(edge-agent.service edge-agent-backup.service edge-agent-backup.timer)
readonly ENABLED=(edge-agent.service edge-agent-backup.timer)
readonly CREDENTIALS=(recognizer-api-key site-token)
SOURCE=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
readonly SOURCE

root=""
python=python3
wheel=""
action=install
purge=0
use_systemctl=1
manage_user=1
pip_args=()

usage() {
    cat <<USAGE
usage: $0 [options]
  --wheel FILE     install this wheel instead of the checkout
  --python PYTHON  interpreter for the virtualenv (default: python3, 3.11+)
  --pip-arg ARG    pass ARG to pip install (repeatable)
  --root DIR       install under DIR instead of /
  --no-systemctl   do not reload, enable, start or stop units
  --no-user        do not create or remove the $APP user, nor chown
  --uninstall      remove the units, the virtualenv and the user
  --purge          with --uninstall: also remove /etc/$APP and /var/lib/$APP
USAGE
}

die() {
    printf '%s: %s\n' "$(basename "$0")" "$*" >&2
    exit 1
}

say() {
    printf '%s\n' "$*"
}

parse_args() {
    while [ $# -gt 0 ]; do
        case "$1" in
            --wheel) wheel=${2:?--wheel needs a file}; shift ;;
            --python) python=${2:?--python needs an interpreter}; shift ;;
            --pip-arg) pip_args+=("${2:?--pip-arg needs a value}"); shift ;;
            --root|--prefix) root=${2:?--root needs a folder}; shift ;;
            --no-systemctl) use_systemctl=0 ;;
            --no-user) manage_user=0 ;;
            --uninstall) action=uninstall ;;
            --purge) purge=1 ;;
            -h|--help) usage; exit 0 ;;
            *) usage >&2; die "unknown option $1" ;;
        esac
        shift
    done
    if [ "$purge" = 1 ] && [ "$action" != uninstall ]; then
        die "--purge goes with --uninstall"
    fi
    if [ -n "$wheel" ] && [ ! -f "$wheel" ]; then
        die "no wheel at $wheel"
    fi
}

set_paths() {
    root=${root%/}
    opt="$root/opt/$APP"
    venv="$opt/venv"
    share="$opt/share/$APP"
    etc="$root/etc/$APP"
    state="$root/var/lib/$APP"
    unit_dir="$root/etc/systemd/system"
}

need_root() {
    if [ "$use_systemctl" = 1 ] || [ "$manage_user" = 1 ]; then
        [ "$(id -u)" = 0 ] || die "run as root (or with --no-systemctl --no-user)"
    fi
}

run_systemctl() {
    if [ "$use_systemctl" = 1 ]; then
        systemctl "$@"
    fi
}

create_user() {
    [ "$manage_user" = 1 ] || return 0
    if ! getent passwd "$APP" >/dev/null; then
        useradd --system --user-group --home-dir "/var/lib/$APP" \
            --no-create-home --shell /usr/sbin/nologin "$APP"
        say "Created system user $APP"
    fi
}

install_venv() {
    if [ ! -x "$venv/bin/python" ]; then
        mkdir -p "$opt"
        "$python" -m venv "$venv"
        say "Created virtualenv $venv"
    fi
    "$venv/bin/python" -m pip install --quiet --upgrade \
        ${pip_args[@]+"${pip_args[@]}"} "${wheel:-$SOURCE}"
    say "Installed $APP into $venv"
}

install_shared() {
    # init reads the example from here; the README travels with the units.
    install -d -m 0755 "$share"
    install -m 0644 "$SOURCE/config/$APP.example.toml" "$SOURCE/README.md" \
        "$SOURCE/systemd/cloud-sync.service" "$share/"
}

install_config() {
    install -d -m 0755 "$etc"
    install -d -m 0700 "$etc/credentials"
    if [ ! -e "$etc/$APP.toml" ]; then
        install -m 0640 "$SOURCE/config/$APP.example.toml" "$etc/$APP.toml"
        say "Wrote $etc/$APP.toml from the example"
    else
        say "Kept $etc/$APP.toml"
    fi
    local name
    for name in "${CREDENTIALS[@]}"; do
        # LoadCredential= refuses to start the unit when a file is missing;
        # an empty one means "not set".
        if [ ! -e "$etc/credentials/$name" ]; then
            install -m 0600 /dev/null "$etc/credentials/$name"
        fi
    done
    if [ "$manage_user" = 1 ]; then
        chgrp "$APP" "$etc/$APP.toml"
    fi
}

install_state() {
    install -d -m 0700 "$state"
    if [ "$manage_user" = 1 ]; then
        chown "$APP:$APP" "$state"
    fi
}

install_units() {
    install -d -m 0755 "$unit_dir"
    local unit
    for unit in "${UNITS[@]}"; do
        install -m 0644 "$SOURCE/systemd/$unit" "$unit_dir/$unit"
    done
    run_systemctl daemon-reload
    run_systemctl enable --now "${ENABLED[@]}"
    # An upgrade must run the new code.
    run_systemctl try-restart edge-agent.service
    say "Installed units into $unit_dir"
}

uninstall() {
    local unit
    run_systemctl disable --now "${ENABLED[@]}" || true
    for unit in "${UNITS[@]}"; do
        rm -f "$unit_dir/$unit"
    done
    run_systemctl daemon-reload
    rm -rf "$opt"
    if [ "$manage_user" = 1 ] && getent passwd "$APP" >/dev/null; then
        userdel "$APP"
    fi
    if [ "$purge" = 1 ]; then
        rm -rf "$etc" "$state"
        say "Removed $APP with its config and data"
    else
        say "Removed $APP; kept $etc and $state (--purge removes them)"
    fi
}

main() {
    parse_args "$@"
    set_paths
    need_root
    if [ "$action" = uninstall ]; then
        uninstall
        return
    fi
    create_user
    install_venv
    install_shared
    install_config
    install_state
    install_units
    say "Next: edge-agent init, then edge-agent doctor (see $share/README.md)"
}

main "$@"
