#!/bin/sh
# Installs the Prometheus server and promtool from Debian's package `prometheus` (used by `make prereqs` and the tests).
# Only the binaries are wanted: the tests run /usr/bin/prometheus themselves on 127.0.0.1 with a temporary storage
# directory, so the package's own service is kept from starting (policy-rc.d while installing, then disabled).
set -eu
if command -v prometheus >/dev/null && command -v promtool >/dev/null; then
  exit 0
fi
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO="${HFTSTREAM_SUDO:-sudo}"; fi  # the tests set HFTSTREAM_SUDO="sudo -n" (never prompt)
echo "installing prometheus and promtool (Debian package prometheus)" >&2
POLICY=/usr/sbin/policy-rc.d
ADDED=
if [ ! -e "$POLICY" ]; then
  # exit 101: "action not allowed" -- invoke-rc.d / deb-systemd-invoke then do not start the service
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null && $SUDO chmod 755 "$POLICY" && ADDED=1
fi
status=0
$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends prometheus >/dev/null || status=$?
if [ -n "$ADDED" ]; then $SUDO rm -f "$POLICY"; fi
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
exit $status
