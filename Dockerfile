# One image for every PriceMyRide Python service (workers, dashboard, producer, training, MLflow server).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.lock pyproject.toml README.md ./
RUN pip install uv==0.13.9 && uv pip install --system --compile-bytecode -r requirements.lock
COPY pricemyride/ pricemyride/
COPY pricemyride_cli/ pricemyride_cli/
COPY pricing/ pricing/
COPY producers/ producers/
COPY stream_workers/ stream_workers/
COPY training/ training/
COPY monitoring/ monitoring/
COPY dashboard/ dashboard/
COPY retrainer/ retrainer/
COPY infra/ infra/
RUN uv pip install --system --compile-bytecode --no-deps . && useradd --create-home --uid 10001 app && mkdir -p /data && chown app /data
USER app
ENV PRICEMYRIDE_STATE_DIR=/data
CMD ["pricemyride", "--help"]
