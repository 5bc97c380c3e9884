#!/bin/bash
# Runs inside LocalStack once it is ready: verify the welcome mail's sender,
# which SES (and LocalStack's SES) refuses to send from otherwise. Keep the
# address in step with EMAIL_SENDER in localstack/deploy.sh.
awslocal ses verify-email-identity --email-address "${CHRONICLE_EMAIL_SENDER:-no-reply@example.com}"
