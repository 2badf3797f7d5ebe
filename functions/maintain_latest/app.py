"""MaintainLatest: keep one live document per indicator behind the latest aliases."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ti_anomali.latest import DatasetOutcome, LatestJob
from ti_anomali.retry import InvocationDeadline
from ti_anomali.runtime import build_latest_dependencies
from ti_anomali.settings import LatestSettings, metrics_namespace

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=metrics_namespace(os.environ))

settings = LatestSettings.from_environment(os.environ)
deadline = InvocationDeadline()
dependencies = build_latest_dependencies(settings)


# NOTE: no `@metrics.log_metrics`: each dataset's metrics are flushed on their own, with the
# dataset as a dimension, and the decorator would then warn about an empty flush.
@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Reflect new source documents, sweep expired ones, and return what was done per dataset."""
    deadline.start(context)
    outcomes = LatestJob(dependencies, deadline, owner=context.aws_request_id).run()
    for outcome in outcomes:
        publish_metrics(outcome)
    return {"datasets": [outcome.__dict__ for outcome in outcomes]}


def publish_metrics(outcome: DatasetOutcome) -> None:
    """Emit one dataset's figures as CloudWatch metrics, with the dataset as a dimension."""
    metrics.add_dimension(name="Dataset", value=outcome.dataset)
    metrics.add_metric(name="LatestUpserted", unit=MetricUnit.Count, value=outcome.upserted)
    metrics.add_metric(name="LatestExpired", unit=MetricUnit.Count, value=outcome.expired)
    metrics.add_metric(name="LatestRetired", unit=MetricUnit.Count, value=outcome.retired)
    metrics.add_metric(name="LatestHeldBack", unit=MetricUnit.Count, value=outcome.held_back)
    if outcome.catch_up_gap:
        metrics.add_metric(name="LatestCatchUpGaps", unit=MetricUnit.Count, value=1)
    if outcome.lag_seconds is not None:
        metrics.add_metric(name="LatestLagSeconds", unit=MetricUnit.Seconds, value=outcome.lag_seconds)
    metrics.flush_metrics()
