#!/usr/bin/env bash
# The tests, set-up included: bash scripts/test.sh   (extra arguments go to pytest)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Debian's Chromium (and a Chinese font for its screenshots) for tests/serve/test_page_browser.py: Playwright's
# own browser download does not work here. Once; without apt-get or root the page test fails and says what to run.
if [ ! -x "${RNNKIT_CHROMIUM:-/usr/bin/chromium}" ] && command -v apt-get > /dev/null; then
    apt_install() {
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium fonts-wqy-microhei \
            > /dev/null 2>&1
    }
    if apt_install || { apt-get update -qq > /dev/null 2>&1 && apt_install; }; then
        echo "[test] installed Debian's chromium for the page test"
    else
        echo "[test] could not install Debian's chromium (apt-get install chromium): the page test will fail"
    fi
fi
.venv/bin/ruff check src tests bench examples scripts
set +e
.venv/bin/python -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "scripts/test.sh: pytest collected no tests; that is a failure here" >&2
    exit 1
fi
exit "$rc"
