#!/usr/bin/env bash
# Deploys template.yaml to the LocalStack of localstack/docker-compose.yml
# (make localstack-up) and prints the API's base URL. Needs Docker, the SAM
# CLI (sam, or samlocal from aws-sam-cli-local) and the AWS CLI v2 (or
# awslocal). Run from anywhere: make localstack-deploy.
set -euo pipefail
cd "$(dirname "$0")/.."

STACK=${STACK:-chronicle-local}
STAGE=${STAGE:-dev}
EMAIL_SENDER=${EMAIL_SENDER:-no-reply@example.com}
LOCALSTACK_URL=${LOCALSTACK_URL:-http://localhost:4566}
# Every SDK and CLI call below goes to LocalStack: the AWS CLI v2 and the SAM
# CLI (boto3) honour AWS_ENDPOINT_URL.
export AWS_ENDPOINT_URL=$LOCALSTACK_URL
export AWS_REGION=${AWS_REGION:-us-east-1} AWS_DEFAULT_REGION=${AWS_REGION:-us-east-1}
export AWS_ACCESS_KEY_ID=${AWS_ACCESS_KEY_ID:-test} AWS_SECRET_ACCESS_KEY=${AWS_SECRET_ACCESS_KEY:-test}

aws() { if command -v awslocal >/dev/null; then awslocal "$@"; else command aws "$@"; fi; }
sam() { if command -v samlocal >/dev/null; then samlocal "$@"; else command sam "$@"; fi; }

# 1. Signing keys. In AWS the authorizer verifies RS256 tokens against the
#    issuer's JWKS (the template wants an https:// JwksUrl). Here the issuer
#    is us: an RSA key in localstack/.jwt, its JWKS in a public S3 object,
#    which LocalStack serves over https with a valid certificate on
#    *.localhost.localstack.cloud (and resolves for its Lambda containers).
mkdir -p localstack/.jwt
go run ./cmd/local jwks --key localstack/.jwt/key.pem > localstack/.jwt/jwks.json
BUCKET=chronicle-jwks
aws s3api create-bucket --bucket "$BUCKET" >/dev/null 2>&1 || true
aws s3 cp localstack/.jwt/jwks.json "s3://$BUCKET/jwks.json" --acl public-read --content-type application/json >/dev/null
JWKS_URL="https://$BUCKET.s3.localhost.localstack.cloud:4566/jwks.json"

# 2. The welcome mail's sender (the compose init hook does it too).
aws ses verify-email-identity --email-address "$EMAIL_SENDER"

# 3. Build with the Makefile's build-<LogicalId> targets (no container) and
#    deploy. MaxReceiveCount=2 so that the suite's poisoned event reaches
#    the DLQ within minutes (visibility timeout 20 s).
sam build
sam deploy --stack-name "$STACK" --resolve-s3 --capabilities CAPABILITY_IAM \
  --no-confirm-changeset --no-fail-on-empty-changeset \
  --parameter-overrides "Stage=$STAGE" JwtIssuer=chronicle-local JwtAudience=chronicle-api \
    "JwksUrl=$JWKS_URL" "EmailSender=$EMAIL_SENDER" MaxReceiveCount=2 \
    EnableDeletionProtection=false EnablePointInTimeRecovery=false

API_ID=$(aws cloudformation describe-stack-resource --stack-name "$STACK" --logical-resource-id Api \
  --query StackResourceDetail.PhysicalResourceId --output text)
API_URL="$LOCALSTACK_URL/restapis/$API_ID/$STAGE/_user_request_"
echo "$API_URL" > localstack/.api-url
echo
echo "API: $API_URL"
echo "Token: go run ./cmd/local token --key localstack/.jwt/key.pem --sub alice --roles admin"
