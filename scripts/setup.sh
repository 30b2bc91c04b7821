#!/usr/bin/env bash
# Installs everything plantsweep and its tests need on a fresh Debian 12 machine (run as root):
# the Debian packages, a virtualenv at .venv with the package and its test extras, and the
# cache of yara-python wheels that the controller pushes to plant hosts.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v ssh-keygen >/dev/null 2>&1 || need+=(openssh-client)
command -v nsenter >/dev/null 2>&1 || need+=(util-linux)
command -v minisign >/dev/null 2>&1 || need+=(minisign)
# The tests build a password-protected zip with Info-ZIP (zipfile cannot write one).
command -v zip >/dev/null 2>&1 || need+=(zip)
# Samba: the SMB server of the simulated Windows hosts (file transfer tests).
[ -x /usr/sbin/smbd ] || need+=(samba)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
# PostgreSQL: the company-wide store; the tests start a private server from this package.
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v psql >/dev/null 2>&1 || need+=(postgresql-client)
# WeasyPrint renders PDFs with Pango; the tests read them back with pdftotext.
[ -e /usr/lib/x86_64-linux-gnu/libpango-1.0.so.0 ] || compgen -G '/usr/lib/*/libpango-1.0.so.0' \
    >/dev/null || need+=(libpango-1.0-0 libpangoft2-1.0-0)
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
fc-list 2>/dev/null | grep -qi dejavu || need+=(fonts-dejavu-core)
# Headless Chromium for the web view's browser tests (Playwright drives this system browser;
# no `playwright install` download).
[ -x /usr/bin/chromium ] || need+=(chromium)
# rsyslog with its GnuTLS driver: the real syslog receiver of the SIEM export tests (CEF and
# LEEF over TCP and TLS); the tests start their own rsyslogd, the packaged service stays off.
[ -x /usr/sbin/rsyslogd ] || need+=(rsyslog)
[ -e /usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so ] || compgen -G '/usr/lib/*/rsyslog/lmnsd_gtls.so' \
    >/dev/null || need+=(rsyslog-gnutls)
if [ ${#need[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# The packaged sshd and Samba must not run on the machine itself: the simulated plant starts
# its own, inside its network namespaces.
if command -v systemctl >/dev/null 2>&1; then
    systemctl disable --now ssh.service smbd.service nmbd.service samba-ad-dc.service \
        postgresql.service rsyslog.service \
        >/dev/null 2>&1 || true
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# pip's build chatter goes to a log, shown only if the install fails.
log=$(mktemp)
if ! { .venv/bin/python -m pip install -q --upgrade pip && \
       .venv/bin/python -m pip install -q -e '.[test]'; } >"$log" 2>&1; then
    cat "$log" >&2; rm -f "$log"; echo "setup: pip install failed" >&2; exit 1
fi
rm -f "$log"
# yara-python wheels for the plant hosts' interpreters (the payload unpacks one in its temp dir).
.venv/bin/plantsweep wheels >/dev/null
echo "setup: done ($(.venv/bin/plantsweep --version))"
