#!/usr/bin/env bash
# Builds the release preset and starts heraldd with configs/herald.toml, the embedded default,
# then prints where it listens, the dashboard, and first commands to try (heraldctl and curl).
# Extra arguments go to heraldd (e.g. tools/run.sh --listen 127.0.0.1:9090, or
# --allow-private-targets to deliver to receivers on this machine, heraldctl listen's among them).
# For the routing demo: build/release/bin/herald-demo
set -euo pipefail
cd "$(dirname "$0")/.."

bash tools/deps.sh
cmake --preset release >/dev/null
cmake --build --preset release -j "$(nproc)" --target heraldd heraldctl herald-demo

log=$(mktemp)
build/release/bin/heraldd --config configs/herald.toml "$@" > >(tee -i "$log") 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM
for _ in $(seq 100); do
  grep -q "listening on" "$log" && break
  kill -0 $pid 2>/dev/null || { wait $pid; exit $?; }
  sleep 0.05
done
url=$(grep -o "http://[^ ]*" "$log" | head -1)
ctl=build/release/bin/heraldctl
cat <<EXAMPLE

Dashboard: $url/ui/  (sign in with the key of --api-key; any key when heraldd has none)

Try it (in another terminal):

  # heraldctl: see it, steer it (tables on a terminal, --json for scripts)
  export HERALD_URL=$url
  $ctl status
  $ctl catalog search 配達
  # a local receiver that verifies signatures, with a profile and subscription pointed at it
  # (needs heraldd started with --allow-private-targets; it runs until Ctrl-C, so give it a
  # terminal of its own), then an event with the catalog's example payload:
  $ctl listen --create-profile demo --subscribe SMS:DELIVERY
  $ctl send SMS DELIVERY --set applicationId=shop
  $ctl deliveries ls; $ctl top

  # or with curl:
  # subscribe to SMS delivery reports of application "shop", creating the profile inline
  curl -s -X POST $url/subscriptions/1/subscription/SMS -H 'content-type: application/json' -d '{
    "subscriptionId":"shop-dlr","events":["DELIVERY"],"criteria":[{"applicationId":"shop"}],
    "profile":{"profileId":"shop","webhook":{"notifyUrl":"https://shop.example.com/dlr"}}}'

  # post an event: heraldd POSTs its payload to the profile's notifyUrl
  curl -s -X POST $url/v1/events -H 'content-type: application/json' -d '{
    "channel":"SMS","event":"DELIVERY","applicationId":"shop","payload":{"results":[{"messageId":"m1"}]}}'
  curl -s $url/metrics | grep -E '^herald_(events_accepted|webhook_(delivered|failed|retried))'

  # shop.example.com does not answer, so the webhook is retried on the platform's schedule
  # (1 min + n² min) and ends as a dead letter, listed and replayed here:
  curl -s "$url/v1/dead-letters?profileId=shop"

  # To deliver to a receiver on this machine, start with: tools/run.sh --allow-private-targets

Stop with Ctrl-C.
EXAMPLE
wait $pid
