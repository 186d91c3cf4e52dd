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
awslocal sqs create-queue --queue-name hubfolio-local-model-sync \
  --attributes VisibilityTimeout=60,MessageRetentionPeriod=60 >/dev/null
# The drop folder: S3 notifies a queue of objects created under incoming/, and `npm start` feeds
# that queue to modelIngest (on AWS, serverless.yml subscribes the function to the bucket itself).
EVENTS_URL=$(awslocal sqs create-queue --queue-name hubfolio-local-incoming-events \
  --attributes VisibilityTimeout=360 --query QueueUrl --output text)
EVENTS_ARN=$(awslocal sqs get-queue-attributes --queue-url "$EVENTS_URL" --attribute-names QueueArn --query Attributes.QueueArn --output text)
awslocal s3api put-bucket-notification-configuration --bucket "${BUCKET}" --notification-configuration \
  "{\"QueueConfigurations\":[{\"Id\":\"hubfolio-incoming\",\"QueueArn\":\"${EVENTS_ARN}\",\"Events\":[\"s3:ObjectCreated:*\"],\"Filter\":{\"Key\":{\"FilterRules\":[{\"Name\":\"prefix\",\"Value\":\"incoming/\"}]}}}]}"
echo "hubfolio: bucket ${BUCKET} (incoming/ notifies hubfolio-local-incoming-events), queues hubfolio-local-predictions (+ -dlq) ready"
