#!/usr/bin/env bash
# LocalStack init (docker-compose): the bucket and queues the suite uses, as serverless.yml declares
# them on AWS. `npm start` creates the same names when missing, so this only has to run once.
set -euo pipefail
BUCKET=${MODEL_BUCKET:-hubfolio-local-models}

awslocal s3 mb "s3://${BUCKET}" 2>/dev/null || true
DLQ_URL=$(awslocal sqs create-queue --queue-name hubfolio-local-predictions-dlq \
  --attributes MessageRetentionPeriod=1209600 --query QueueUrl --output text)
DLQ_ARN=$(awslocal sqs get-queue-attributes --queue-url "$DLQ_URL" --attribute-names QueueArn --query Attributes.QueueArn --output text)
awslocal sqs create-queue --queue-name hubfolio-local-predictions \
  --attributes "{\"VisibilityTimeout\":\"60\",\"RedrivePolicy\":\"{\\\"deadLetterTargetArn\\\":\\\"${DLQ_ARN}\\\",\\\"maxReceiveCount\\\":\\\"5\\\"}\"}"
echo "hubfolio: bucket ${BUCKET}, queues hubfolio-local-predictions (+ -dlq) ready"
