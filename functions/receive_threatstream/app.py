"""ReceiveThreatstream: accept indicators the Anomali Elastic Extension pushes to a Function URL."""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from ti_anomali.push import PushRequest
from ti_anomali.receive import PushOutcome, PushReceiver
from ti_anomali.retry import InvocationDeadline
from ti_anomali.runtime import build_push_dependencies
from ti_anomali.settings import PushSettings, metrics_namespace

logger = Logger()
tracer = Tracer()
metrics = Metrics(namespace=metrics_namespace(os.environ))

settings = PushSettings.from_environment(os.environ)
deadline = InvocationDeadline()
receiver = PushReceiver(build_push_dependencies(settings, deadline))


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Handle one Function URL request (payload format 2.0) and return the receiver's response."""
    deadline.start(context)
    outcome = receiver.handle(PushRequest.from_function_url_event(event))
    publish_metrics(outcome)
    return outcome.response.to_function_url_result()


def publish_metrics(outcome: PushOutcome) -> None:
    """Emit the request's figures as CloudWatch metrics."""
    metrics.add_metric(name="PushRequests", unit=MetricUnit.Count, value=1)
    metrics.add_metric(name="IndicatorsWritten", unit=MetricUnit.Count, value=outcome.created)
    metrics.add_metric(name="IndicatorsDeadLettered", unit=MetricUnit.Count, value=outcome.dead_lettered)
    metrics.add_metric(name="LinesRejected", unit=MetricUnit.Count, value=outcome.lines_rejected)
