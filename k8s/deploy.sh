#!/usr/bin/env bash
# Ordered roll-out of one overlay with plain kubectl (no Argo CD):
#   1. namespace, ServiceAccount, config, base NetworkPolicies  (label deploy-phase=pre-deploy)
#   2. production: the data tier (label deploy-phase=data): the roles' generated passwords,
#      PostgreSQL Cluster, Pooler, backups, RabbitmqCluster, vhost, users, permissions; wait
#      until they are ready and the operators have generated their Secrets
#   3. the migration Job, and wait until it completes
#   4. everything else; wait for every Deployment to roll out
# Usage: k8s/deploy.sh dev|production        (the Secrets you create must already exist,
#        see k8s/examples/secrets.example.yaml and docs/deploy.md)
set -euo pipefail

overlay="${1:?usage: $0 dev|production}"
here="$(cd "$(dirname "$0")" && pwd)"
ns=sqi

rendered="$(mktemp)"
trap 'rm -f "$rendered"' EXIT
kubectl kustomize "$here/overlays/$overlay" > "$rendered"

services="gateway ingest scoring feedback reporting"
# Secrets a person (or External Secrets) creates; in dev also those the operators make in production.
created="sqi-app-secrets sqi-jwt-public-keys"
generated="sqi-pg-app sqi-keda-user-credentials sqi-migrate-user-credentials"
for svc in $services; do
  generated="$generated sqi-pg-$svc sqi-$svc-user-credentials"
done
if [[ "$overlay" == production ]]; then
  created="$created sqi-backup-object-store sqi-tls"
else
  created="$created $generated"
fi
require_secrets() {
  for s in "$@"; do
    kubectl -n "$ns" get secret "$s" >/dev/null 2>&1 \
      || { echo "missing Secret $ns/$s (see k8s/examples/secrets.example.yaml)" >&2; exit 1; }
  done
}
# shellcheck disable=SC2086
require_secrets $created

echo "==> pre-deploy resources"
kubectl apply -f "$rendered" -l sqi.gov.vn/deploy-phase=pre-deploy

if [[ "$overlay" == production ]]; then
  echo "==> data tier (CloudNativePG, RabbitMQ operators)"
  kubectl apply -f "$rendered" -l sqi.gov.vn/deploy-phase=data
  kubectl -n "$ns" wait externalsecret.external-secrets.io --all --for=condition=Ready --timeout=5m
  kubectl -n "$ns" wait cluster/sqi-pg --for=condition=Ready --timeout=30m
  kubectl -n "$ns" wait rabbitmqcluster/sqi-rabbitmq --for=condition=AllReplicasReady --timeout=20m
  kubectl -n "$ns" wait user.rabbitmq.com --all --for=condition=Ready --timeout=5m
  kubectl -n "$ns" wait permission.rabbitmq.com --all --for=condition=Ready --timeout=5m
  # shellcheck disable=SC2086
  require_secrets $generated
fi

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
