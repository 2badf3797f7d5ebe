#!/usr/bin/env bash
# Install what the report and its tests need from Debian's packages, once: Chromium (the report
# test loads the HTML in headless Chromium) and libcairo2 (cairosvg renders each chart to PNG).
# Does nothing when both are present; needs root (or sudo) only when something is missing.
set -euo pipefail

missing=()
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
if ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libcairo\.so\.2 '; then
    missing+=(libcairo2)
fi
if ((${#missing[@]} == 0)); then
    exit 0
fi

run_as_root=()
if ((EUID != 0)); then
    if ! command -v sudo >/dev/null; then
        echo "local/chromium.sh: missing ${missing[*]}; run 'apt-get install -y ${missing[*]}' as root" >&2
        exit 1
    fi
    run_as_root=(sudo)
fi

echo "local/chromium.sh: installing ${missing[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
"${run_as_root[@]}" apt-get update -qq
"${run_as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
