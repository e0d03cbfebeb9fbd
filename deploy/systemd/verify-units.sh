#!/usr/bin/env bash
# Verify syncd.service and syncd@.service with `systemd-analyze verify`, on any machine (CI included).
#
# `systemd-analyze verify` also checks that ExecStart='s program exists and is executable. The units name
# /usr/bin/syncd, where a package puts it; a development machine or a fresh CI runner has syncd in a virtualenv
# instead. So this script verifies copies of the two units, in a temporary directory, that differ from the
# shipped files in ONE thing: ExecStart's /usr/bin/syncd becomes the syncd given as the argument (default: the
# one on PATH). Every other line, the hardening included, is verified as shipped. The template is verified as
# the instance syncd@example.service. Any message from systemd-analyze (an unknown key, a bad value) fails.
#
# usage: deploy/systemd/verify-units.sh [PATH/TO/syncd]      e.g. deploy/systemd/verify-units.sh .venv/bin/syncd
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
syncd=${1:-$(command -v syncd || true)}
if [ -z "$syncd" ] || [ ! -x "$syncd" ]; then
    echo "verify-units: no executable syncd (give its path: $0 .venv/bin/syncd)" >&2
    exit 2
fi
syncd=$(cd "$(dirname "$syncd")" && pwd)/$(basename "$syncd")
if ! command -v systemd-analyze >/dev/null; then
    echo "verify-units: systemd-analyze is not installed (apt-get install systemd)" >&2
    exit 2
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for unit in syncd.service syncd@.service; do
    sed "s#^ExecStart=/usr/bin/syncd #ExecStart=${syncd} #" "$here/$unit" >"$work/$unit"
    if [ "$(grep -c "^ExecStart=${syncd} " "$work/$unit")" != 1 ]; then
        echo "verify-units: $unit has no 'ExecStart=/usr/bin/syncd ...' line to point at $syncd" >&2
        exit 1
    fi
done

status=0
output=$(cd "$work" && systemd-analyze verify "$work/syncd.service" "$work/syncd@example.service" 2>&1) || status=$?
if [ "$status" != 0 ] || [ -n "$output" ]; then
    echo "$output" >&2
    echo "verify-units: systemd-analyze verify failed (exit $status)" >&2
    exit 1
fi
echo "verify-units: syncd.service and syncd@.service verified (ExecStart pointed at $syncd)"
