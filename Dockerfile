# One image for every PriceMyRide Python service (workers, dashboard, producer, training, MLflow, Prefect).
# The base image is pinned by digest (PYTHON_IMAGE, from deploy/pin-images.sh; compose passes it), and the
# packages are the runtime set of requirements.prod.lock, each checked against its hash: no dev tools
# (pytest, selenium, …) in the image.
ARG PYTHON_IMAGE
FROM ${PYTHON_IMAGE} AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY requirements.prod.lock pyproject.toml README.md ./
RUN pip install --require-hashes --no-deps -r requirements.prod.lock && python -m compileall -q /usr/local/lib/python3.11
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
RUN pip install --no-deps --no-build-isolation --no-index . && useradd --create-home --uid 10001 app \
    && mkdir -p /data && chown app /data
USER app
ENV PRICEMYRIDE_STATE_DIR=/data
CMD ["pricemyride", "--help"]
