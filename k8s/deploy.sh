#!/usr/bin/env bash
# Ordered roll-out of one overlay with plain kubectl (no Argo CD):
#   1. namespace, ServiceAccount, config, base NetworkPolicies  (label deploy-phase=pre-deploy)
#   2. the migration Job, and wait until it completes
#   3. everything else; wait for every Deployment to roll out
# Usage: k8s/deploy.sh dev|production        (Secrets must already exist)
set -euo pipefail

overlay="${1:?usage: $0 dev|production}"
here="$(cd "$(dirname "$0")" && pwd)"
ns=sqi

rendered="$(mktemp)"
trap 'rm -f "$rendered"' EXIT
kubectl kustomize "$here/overlays/$overlay" > "$rendered"

for s in sqi-database sqi-amqp sqi-app-secrets sqi-jwt-public-keys; do
  kubectl -n "$ns" get secret "$s" >/dev/null 2>&1 \
    || { echo "missing Secret $ns/$s (see k8s/examples/secrets.example.yaml)" >&2; exit 1; }
done

echo "==> pre-deploy resources"
kubectl apply -f "$rendered" -l sqi.gov.vn/deploy-phase=pre-deploy

echo "==> migrations"
# Jobs are immutable: remove the previous run (its pod logs go with it).
kubectl -n "$ns" delete job sqi-migrate --ignore-not-found --wait=true
kubectl apply -f "$rendered" -l app.kubernetes.io/name=sqi-migrate
# Wait for Complete *or* Failed (kubectl wait cannot wait for either).
deadline=$(( $(date +%s) + ${SQI_MIGRATE_TIMEOUT_S:-1800} ))
while :; do
  state="$(kubectl -n "$ns" get job sqi-migrate \
    -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{" "}{end}')"
  case " $state " in
    *" Complete "*) echo "migrations done"; break ;;
    *" Failed "*) kubectl -n "$ns" logs job/sqi-migrate --tail=200 >&2 || true
                  echo "migration Job failed: NOT rolling out" >&2; exit 1 ;;
  esac
  if (( $(date +%s) > deadline )); then
    echo "migration Job timed out: NOT rolling out" >&2; exit 1
  fi
  sleep 5
done

echo "==> roll-out"
kubectl apply -f "$rendered"
for d in $(kubectl -n "$ns" get deploy -l app.kubernetes.io/part-of=sqi -o name); do
  kubectl -n "$ns" rollout status "$d" --timeout=10m
done
