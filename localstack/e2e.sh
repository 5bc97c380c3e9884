#!/usr/bin/env bash
# Runs the end-to-end suite (cmd/local/e2e) against the LocalStack
# deployment of localstack/deploy.sh: tokens signed with its RSA key, the
# events table for the poisoned-aggregate test, LocalStack's SES records.
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=${STACK:-chronicle-local}
LOCALSTACK_URL=${LOCALSTACK_URL:-http://localhost:4566}
[ -f localstack/.api-url ] || { echo "no localstack/.api-url: run make localstack-deploy first" >&2; exit 1; }

export AWS_ENDPOINT_URL=$LOCALSTACK_URL
export AWS_REGION=${AWS_REGION:-us-east-1}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}
export CHRONICLE_E2E_BASE_URL=$(cat localstack/.api-url)
export CHRONICLE_E2E_JWT_KEY=$(pwd)/localstack/.jwt/key.pem # absolute: go test runs in the package's directory
export CHRONICLE_E2E_JWT_ISSUER=chronicle-local CHRONICLE_E2E_JWT_AUDIENCE=chronicle-api
export CHRONICLE_E2E_EVENTS_TABLE=$STACK-events
export CHRONICLE_E2E_SES_URL=$LOCALSTACK_URL/_aws/ses
export CHRONICLE_E2E_DLQ_TIMEOUT=${CHRONICLE_E2E_DLQ_TIMEOUT:-10m}
exec go test -count=1 -v -timeout 30m ./cmd/local/e2e/
