"""The retrain flow as a Prefect deployment: a process work pool, and a deployment whose code is this project.

``pricemyride deploy-flow`` registers it on the Prefect server in ``PREFECT_API_URL``; a Prefect worker
(``prefect worker start --pool <pool>``) started from the same image or checkout runs the flow runs.
The retrain listener then creates one flow run per request (``PRICEMYRIDE_RETRAIN_DEPLOYMENT``) with the
request id as idempotency key, so a retried request never trains twice.
"""

from __future__ import annotations

import logging
from pathlib import Path
from uuid import UUID

from prefect import Flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import WorkPoolCreate
from prefect.exceptions import ObjectNotFound

from pricemyride.settings import Settings

log = logging.getLogger(__name__)
PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENTRYPOINT = "training/flow.py:retrain"
DEFAULT_NAME = "pricemyride"


def ensure_work_pool(name: str) -> None:
    """Create the process work pool ``name`` unless it exists."""
    with get_client(sync_client=True) as client:
        try:
            client.read_work_pool(name)
        except ObjectNotFound:
            client.create_work_pool(WorkPoolCreate(name=name, type="process"))
            log.info("created process work pool %s", name)


def deploy_flow(settings: Settings, name: str = DEFAULT_NAME) -> UUID:
    """Register the ``retrain`` flow from this project's folder on the pool; return the deployment id."""
    from training.flow import retrain

    ensure_work_pool(settings.prefect_work_pool)
    source = retrain.from_source(source=str(PROJECT_ROOT), entrypoint=ENTRYPOINT)
    if not isinstance(source, Flow):  # called outside an event loop, from_source returns the flow itself
        raise TypeError(f"from_source: expected a Flow, got {type(source).__name__}")
    deployment_id = source.deploy(
        name=name, work_pool_name=settings.prefect_work_pool, concurrency_limit=1, print_next_steps=False
    )
    log.info("deployed retrain/%s on pool %s", name, settings.prefect_work_pool)
    return UUID(str(deployment_id))
