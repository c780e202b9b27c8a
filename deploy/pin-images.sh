#!/usr/bin/env bash
# Print each image docker-compose.yml runs, pinned by the digest its tag has today, as .env lines:
#   deploy/pin-images.sh >> .env
# Run it on a host with Docker (it asks the registry: `docker buildx imagetools inspect`), review the diff,
# and commit the pins you deploy with. Compose refuses to start without them.
set -euo pipefail
declare -A IMAGES=(
  [PYTHON_IMAGE]=python:3.11-slim
  [KAFKA_IMAGE]=apache/kafka:4.1.1
  [POSTGRES_IMAGE]=postgres:16
  [PROMETHEUS_IMAGE]=prom/prometheus:v2.53.5
  [GRAFANA_IMAGE]=grafana/grafana:12.3.0
)
for name in PYTHON_IMAGE KAFKA_IMAGE POSTGRES_IMAGE PROMETHEUS_IMAGE GRAFANA_IMAGE; do
  tag=${IMAGES[$name]}
  digest=$(docker buildx imagetools inspect "$tag" --format '{{json .Manifest.Digest}}' | tr -d '"')
  [[ $digest =~ ^sha256:[0-9a-f]{64}$ ]] || { echo "pin-images: expected a sha256 digest for $tag, got '$digest'" >&2; exit 1; }
  echo "$name=$tag@$digest"
done
