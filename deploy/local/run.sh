#!/usr/bin/env bash
# Start the whole platform on this machine: gateway and four services, web (gunicorn) and worker
# each, and the web front the gateway serves pages from, under honcho. SQLite files under var/ by
# default; the local RabbitMQ must be running.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH="$PWD/.venv/bin:$PATH"
export LINLI_DATA_DIR="${LINLI_DATA_DIR:-$PWD/var}"
export LOG_JSON="${LOG_JSON:-false}"
mkdir -p "$LINLI_DATA_DIR"

services="gateway issues meetings activities notifications"
# Fails with a clear message if the broker (or a configured database) cannot be reached.
linli-gateway check-config
linli-gateway init-keys
for s in $services; do
  "linli-$s" migrate >/dev/null
  # Queues exist before anyone publishes, so no event is dropped on a first start.
  "linli-$s" declare
done

# Alerts on residents' phones without an app (Web Push): a VAPID key made once in the data folder.
# Messages go through the browsers' push services, so this needs the internet; SMS stay printed.
if [ -z "${PUSH_PROVIDERS:-}" ]; then
  export VAPID_PRIVATE_KEY_FILE="${VAPID_PRIVATE_KEY_FILE:-$LINLI_DATA_DIR/vapid_private.pem}"
  export VAPID_SUBJECT="${VAPID_SUBJECT:-mailto:linli-admin@example.org}"
  linli-notifications vapid-keys "$VAPID_PRIVATE_KEY_FILE" >/dev/null
  export PUSH_PROVIDERS=log,webpush
fi

# Each service's gunicorn workers share one metrics folder, emptied at every start.
for s in $services; do
  rm -rf "$LINLI_DATA_DIR/metrics/$s" && mkdir -p "$LINLI_DATA_DIR/metrics/$s"
done
echo "Linli: open http://127.0.0.1:8000 in a browser (the API and its docs: /api/docs); Ctrl-C stops all."
if [ "${LINLI_DEMO:-1}" != "0" ]; then
  # A demo city modelled on the source article, loaded through the public API once the gateway
  # is ready (LINLI_DEMO=0 to start empty). The demo admin is for this local platform only.
  linli-gateway create-admin --phone 13800000000 --password linli-admin-2026 --name "Demo city admin" >/dev/null
  (linli-demo load --wait 180 || echo "linli-demo: the demo city was not loaded; see above") &
fi
exec honcho start -f Procfile
