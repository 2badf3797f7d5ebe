"""FetchIntelligence: pull ThreatStream intelligence into the source data stream."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ti_anomali.fetch import FetchJob, FetchOutcome, FetchRequest
from ti_anomali.retry import InvocationDeadline
from ti_anomali.runtime import build_fetch_dependencies
from ti_anomali.settings import FetchSettings, metrics_namespace

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=metrics_namespace(os.environ))

settings = FetchSettings.from_environment(os.environ)
deadline = InvocationDeadline()
dependencies = build_fetch_dependencies(settings, deadline)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Fetch up to the page budget and return what was done."""
    deadline.start(context)
    request = FetchRequest.from_event(event)
    outcome = FetchJob(dependencies, deadline, owner=context.aws_request_id).run(request)
    publish_metrics(outcome)
    return outcome.as_dict()


def publish_metrics(outcome: FetchOutcome) -> None:
    """Emit the run's figures as CloudWatch metrics."""
    metrics.add_metric(name="PagesFetched", unit=MetricUnit.Count, value=outcome.pages)
    metrics.add_metric(name="IndicatorsWritten", unit=MetricUnit.Count, value=outcome.indicators_created)
    metrics.add_metric(name="IndicatorsDeadLettered", unit=MetricUnit.Count, value=outcome.indicators_dead_lettered)
    metrics.add_metric(name="MappingErrors", unit=MetricUnit.Count, value=outcome.mapping_errors)
    if outcome.backlog is not None:
        metrics.add_metric(name="BacklogIndicators", unit=MetricUnit.Count, value=outcome.backlog)
