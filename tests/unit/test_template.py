"""template.yaml: settings, least-privilege policies, parameters, schedules, alarms and events.

The template is read with a YAML loader that turns CloudFormation's short tags (!Ref, !Sub, !If, ...)
into their long form, and a small resolver evaluates conditions and references for a set of
deployment scenarios. Each function's environment, resolved that way, must satisfy its settings
class: the test imports FetchSettings, LatestSettings and PushSettings and fails, never skips,
when one of them or a handler module is missing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from ti_anomali import settings as settings_module
from ti_anomali.adapters.cursor_store import CursorKey
from ti_anomali.settings import SettingsError

REPO = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO / "template.yaml"
EVENTS_DIR = REPO / "events"

# Function resource -> (settings class in ti_anomali.settings, prefix of its events in events/).
FUNCTIONS = {
    "FetchIntelligenceFunction": ("FetchSettings", "fetch"),
    "MaintainLatestFunction": ("LatestSettings", "latest"),
    "ReceiveThreatstreamFunction": ("PushSettings", "push"),
}
# Variables the Lambda runtime sets in every function, so the template must not.
LAMBDA_RUNTIME_ENVIRONMENT = {"AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}
# Variables the handlers read outside their settings class (Powertools).
HANDLER_VARIABLES = ("POWERTOOLS_SERVICE_NAME", "POWERTOOLS_METRICS_NAMESPACE")
# Value the probe of required variables gives to each variable whose name ends in _URL.
PROBE_URL = "https://engine.example:443"

DOMAIN_ARN = "arn:aws:es:eu-west-1:123456789012:domain/threat-intel"
BASE_PARAMETERS = {
    "ThreatStreamSecretName": "ti/threatstream",
    "EngineUrl": "https://search-threat-intel.eu-west-1.es.amazonaws.com",
}
SCENARIOS = {
    "opensearch-sigv4-push-iam": {"OpenSearchDomainArn": DOMAIN_ARN, "PushEndpoint": "iam"},
    "opensearch-sigv4-no-push": {"OpenSearchDomainArn": DOMAIN_ARN},
    "elasticsearch-api-key-push-hmac": {
        "EngineKind": "elasticsearch",
        "EngineAuth": "api-key",
        "EngineSecretName": "ti/elastic",
        "PushEndpoint": "hmac",
        "PushSecretName": "ti/push-hmac",
    },
    "opensearch-basic-kms-vpc": {
        "EngineAuth": "basic",
        "EngineSecretName": "ti/opensearch",
        "KmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/0f6b4d4e-1cd4-4ccf-9c06-dfa6518bea5c",
        "SubnetIds": "subnet-0123456789abcdef0",
        "SecurityGroupIds": "sg-0123456789abcdef0",
    },
}


class _CloudFormationLoader(yaml.SafeLoader):
    """SafeLoader that reads CloudFormation's short-form tags as their long-form mappings."""


def _construct_intrinsic(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    if suffix == "Ref":
        return {"Ref": value}
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    if suffix == "Condition":
        return {"Condition": value}
    return {f"Fn::{suffix}": value}


_CloudFormationLoader.add_multi_constructor("!", _construct_intrinsic)


def load_template(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    """Read a CloudFormation or SAM template, keeping intrinsic functions as long-form mappings."""
    return yaml.load(path.read_text(), Loader=_CloudFormationLoader)  # noqa: S506


class Deployment:
    """The template as deployed with one set of parameter values: conditions and references resolved."""

    def __init__(self, template: dict[str, Any], overrides: dict[str, str]) -> None:
        self.template = template
        self.parameters: dict[str, Any] = {}
        for name, spec in template["Parameters"].items():
            raw = str(overrides.get(name, spec.get("Default", "")))
            self.parameters[name] = raw.split(",") if spec["Type"] == "CommaDelimitedList" else raw
        missing = [
            name for name, spec in template["Parameters"].items() if "Default" not in spec and name not in overrides
        ]
        assert not missing, f"the scenario gives no value to parameters without a default: {missing}"

    def condition(self, name: str) -> bool:
        """Return the value of a named condition."""
        return bool(self.evaluate(self.template["Conditions"][name]))

    def evaluate(self, node: Any) -> Any:
        """Resolve intrinsic functions; resources resolve to `<LogicalId>` or `<LogicalId.Attribute>`."""
        if isinstance(node, list):
            return [self.evaluate(item) for item in node]
        if not isinstance(node, dict):
            return node
        if len(node) != 1:
            return {key: self.evaluate(value) for key, value in node.items()}
        ((key, value),) = node.items()

        if key == "Ref":
            if value in self.parameters:
                return self.parameters[value]
            return f"<{value}>"

        if key == "Condition":
            return self.condition(value)
        if key == "Fn::If":
            name, when_true, when_false = value
            return self.evaluate(when_true if self.condition(name) else when_false)

        if key == "Fn::Equals":
            left, right = self.evaluate(value)
            return str(left) == str(right)
        if key == "Fn::Not":
            return not self.evaluate(value[0])
        if key == "Fn::And":
            return all(self.evaluate(value))
        if key == "Fn::Or":
            return any(self.evaluate(value))

        if key == "Fn::Join":
            separator, items = value
            return separator.join(str(item) for item in self.evaluate(items))
        if key == "Fn::GetAtt":
            return f"<{'.'.join(value)}>"
        if key == "Fn::Sub":
            return re.sub(r"\$\{([^}]+)\}", lambda match: str(self.evaluate({"Ref": match.group(1)})), value)
        return {key: self.evaluate(value)}

    def rule_failures(self) -> list[str]:
        """Return the AssertDescription of every template rule these parameters break."""
        failures = []
        for rule in self.template.get("Rules", {}).values():
            if "RuleCondition" in rule and not self.evaluate(rule["RuleCondition"]):
                continue
            failures += [
                assertion["AssertDescription"]
                for assertion in rule["Assertions"]
                if not self.evaluate(assertion["Assert"])
            ]
        return failures

    def exists(self, logical_id: str) -> bool:
        """Return whether a resource is created in this deployment."""
        condition = self.template["Resources"][logical_id].get("Condition")
        return condition is None or self.condition(condition)

    def environment(self, function_id: str) -> dict[str, str]:
        """Return the function's environment as Lambda would see it: Globals, its own, the runtime's."""
        variables = dict(self.template["Globals"]["Function"]["Environment"]["Variables"])
        function = self.template["Resources"][function_id]["Properties"]
        variables.update(function.get("Environment", {}).get("Variables", {}))
        resolved = {name: str(self.evaluate(value)) for name, value in variables.items()}
        return {**LAMBDA_RUNTIME_ENVIRONMENT, **resolved}


def settings_class(class_name: str) -> Any:
    """Return a settings class from ti_anomali.settings, failing the test when it does not exist."""
    found = getattr(settings_module, class_name, None)
    if found is None:
        pytest.fail(f"ti_anomali.settings has no {class_name}; the template's function needs it")
    return found


def required_variables(settings_cls: Any, base: dict[str, str]) -> set[str]:
    """Return the variables a settings class cannot do without, given `base` (the runtime's variables).

    It starts from `base` alone and adds each variable the class reports missing until the class
    builds. A SettingsError that names no missing variable fails the test with its message.
    """
    environ = dict(base)
    required: set[str] = set()
    for _ in range(100):
        try:
            settings_cls.from_environment(environ)
        except SettingsError as exc:
            match = re.match(r"([A-Z][A-Z0-9_]*) is missing", str(exc))
            if match is None:
                pytest.fail(f"probing {settings_cls.__name__} with {sorted(environ)} failed: {exc}")
            name = match.group(1)
            required.add(name)
            environ[name] = PROBE_URL if name.endswith("_URL") else "probe"
        else:
            return required
    pytest.fail(f"probing {settings_cls.__name__} did not finish after 100 variables")


def policy_statements(template: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """Yield (resource id, statement) for every IAM statement, each branch of an Fn::If included."""

    def expand(items: Any) -> Iterator[dict[str, Any]]:
        for item in items if isinstance(items, list) else [items]:
            if isinstance(item, dict) and "Fn::If" in item:
                yield from expand([branch for branch in item["Fn::If"][1:] if branch != {"Ref": "AWS::NoValue"}])
            else:
                yield item

    for logical_id, resource in template["Resources"].items():
        properties = resource.get("Properties", {})
        if resource["Type"] == "AWS::Serverless::Function":
            for policy in properties.get("Policies", []):
                assert isinstance(policy, dict) and "Statement" in policy, (
                    f"{logical_id}: policy {policy!r} is a managed policy or policy template; "
                    "write a statement scoped to the resource instead"
                )
                for statement in expand(policy["Statement"]):
                    yield logical_id, statement
        elif resource["Type"] == "AWS::IAM::Role":
            for policy in properties.get("Policies", []):
                for statement in expand(policy["PolicyDocument"]["Statement"]):
                    yield logical_id, statement
        elif resource["Type"] == "AWS::S3::BucketPolicy":
            for statement in expand(properties["PolicyDocument"]["Statement"]):
                yield logical_id, statement


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def referenced_names(node: Any) -> Iterator[str]:
    """Yield every name used in a Ref or in a ${...} of an Fn::Sub."""
    if isinstance(node, list):
        for item in node:
            yield from referenced_names(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                yield value
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                yield from (name.split(".")[0] for name in re.findall(r"\$\{([^}!]+)\}", text))
                if isinstance(value, list):
                    yield from referenced_names(value[1])
            else:
                yield from referenced_names(value)


def resources_of_type(template: dict[str, Any], resource_type: str) -> dict[str, dict[str, Any]]:
    return {name: body for name, body in template["Resources"].items() if body["Type"] == resource_type}


def emitted_metric_names() -> set[str]:
    """Return the metric names the handlers publish through Powertools."""
    names: set[str] = set()
    for handler in (REPO / "functions").glob("*/app.py"):
        names.update(re.findall(r'add_metric\(\s*name="([A-Za-z]+)"', handler.read_text()))
    return names


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    return load_template()


# --- Functions, settings and handlers ---


def test_functions_are_all_known(template: dict[str, Any]) -> None:
    functions = set(resources_of_type(template, "AWS::Serverless::Function"))

    assert functions == set(FUNCTIONS), "add each new function to FUNCTIONS with its settings class"


@pytest.mark.parametrize("function_id", sorted(FUNCTIONS))
def test_handler_module_exists(template: dict[str, Any], function_id: str) -> None:
    properties = template["Resources"][function_id]["Properties"]
    module = properties["Handler"].rpartition(".")[0]
    handler = REPO / properties["CodeUri"] / f"{module}.py"

    assert handler.is_file(), f"{function_id}: {handler.relative_to(REPO)} does not exist"


@pytest.mark.parametrize("function_id", sorted(FUNCTIONS))
def test_environment_has_required_variables(template: dict[str, Any], function_id: str) -> None:
    class_name, _ = FUNCTIONS[function_id]
    required = required_variables(settings_class(class_name), LAMBDA_RUNTIME_ENVIRONMENT)
    provided = set(Deployment(template, BASE_PARAMETERS).environment(function_id))

    assert required, f"the probe found no required variable in {class_name}"
    assert required <= provided, f"{function_id} lacks {sorted(required - provided)} required by {class_name}"
    assert set(HANDLER_VARIABLES) <= provided


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_scenario_satisfies_rules(template: dict[str, Any], scenario: str) -> None:
    deployment = Deployment(template, {**BASE_PARAMETERS, **SCENARIOS[scenario]})

    assert deployment.rule_failures() == []


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
@pytest.mark.parametrize("function_id", sorted(FUNCTIONS))
def test_settings_load_from_environment(template: dict[str, Any], function_id: str, scenario: str) -> None:
    deployment = Deployment(template, {**BASE_PARAMETERS, **SCENARIOS[scenario]})
    if not deployment.exists(function_id):
        return
    environ = deployment.environment(function_id)
    class_name, _ = FUNCTIONS[function_id]

    try:
        settings_class(class_name).from_environment(environ)
        settings_module.metrics_namespace(environ)
    except SettingsError as exc:
        pytest.fail(f"{function_id} in scenario {scenario}: {exc}")


def test_each_function_deployed_somewhere(template: dict[str, Any]) -> None:
    deployments = [Deployment(template, {**BASE_PARAMETERS, **overrides}) for overrides in SCENARIOS.values()]

    for function_id in FUNCTIONS:
        assert any(deployment.exists(function_id) for deployment in deployments), function_id


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"EngineAuth": "basic"}, "EngineSecretName is required"),
        ({"EngineAuth": "sigv4"}, "OpenSearchDomainArn is required"),
        (
            {"EngineKind": "elasticsearch", "OpenSearchDomainArn": DOMAIN_ARN},
            "works with Amazon OpenSearch Service only",
        ),
        ({"OpenSearchDomainArn": DOMAIN_ARN, "PushEndpoint": "hmac"}, "PushSecretName is required"),
    ],
)
def test_rules_reject_incomplete_parameters(template: dict[str, Any], overrides: dict[str, str], expected: str) -> None:
    failures = Deployment(template, {**BASE_PARAMETERS, **overrides}).rule_failures()

    assert any(expected in failure for failure in failures), failures


def test_push_is_off_by_default(template: dict[str, Any]) -> None:
    deployment = Deployment(template, {**BASE_PARAMETERS, "OpenSearchDomainArn": DOMAIN_ARN})

    assert not deployment.exists("ReceiveThreatstreamFunction")
    assert not deployment.exists("ReceiveThreatstreamUrl")
    assert deployment.environment("MaintainLatestFunction")["LATEST_DATASETS"] == "intelligence"


@pytest.mark.parametrize(("push", "auth_type", "public"), [("iam", "AWS_IAM", False), ("hmac", "NONE", True)])
def test_push_url_auth_follows_parameter(template: dict[str, Any], push: str, auth_type: str, public: bool) -> None:
    overrides = {**BASE_PARAMETERS, **SCENARIOS["elasticsearch-api-key-push-hmac"], "PushEndpoint": push}
    deployment = Deployment(template, overrides)
    url = deployment.evaluate(template["Resources"]["ReceiveThreatstreamUrl"]["Properties"])

    assert url["AuthType"] == auth_type
    assert deployment.exists("ReceiveThreatstreamPublicUrlPermission") is public
    assert deployment.exists("ReceiveThreatstreamPublicInvokePermission") is public
    assert deployment.environment("ReceiveThreatstreamFunction")["PUSH_AUTH"] == push


# --- Policies ---


def test_statements_name_a_resource(template: dict[str, Any]) -> None:
    statements = list(policy_statements(template))

    assert statements
    for logical_id, statement in statements:
        sid = statement.get("Sid", statement.get("Action"))
        assert "Resource" in statement, f"{logical_id} {sid}: no Resource"
        assert "*" not in as_list(statement["Resource"]), f"{logical_id} {sid}: Resource is *"


def test_no_wildcard_actions(template: dict[str, Any]) -> None:
    for logical_id, statement in policy_statements(template):
        if statement["Effect"] != "Allow":
            continue
        for action in as_list(statement["Action"]):
            assert action != "*", logical_id
            assert not action.endswith(":*"), f"{logical_id}: {action}"


def test_put_metric_data_needs_namespace_condition(template: dict[str, Any]) -> None:
    for logical_id, statement in policy_statements(template):
        if "cloudwatch:PutMetricData" in as_list(statement["Action"]):
            assert "cloudwatch:namespace" in json.dumps(statement.get("Condition", {})), logical_id


@pytest.mark.parametrize(
    ("function_id", "purpose"), [("FetchIntelligenceFunction", "fetch"), ("MaintainLatestFunction", "latest")]
)
def test_table_access_limited_to_own_keys(template: dict[str, Any], function_id: str, purpose: str) -> None:
    statements = [
        statement
        for logical_id, statement in policy_statements(template)
        if logical_id == function_id and statement["Resource"] == {"Fn::GetAtt": ["CursorTable", "Arn"]}
    ]
    own_key = CursorKey("intelligence", "default", None, purpose=purpose).partition_key

    assert len(statements) == 1
    leading_keys = statements[0]["Condition"]["ForAllValues:StringLike"]["dynamodb:LeadingKeys"]
    assert leading_keys == [f"{purpose}#*"]
    assert own_key.startswith(f"{purpose}#")


def test_push_has_no_table_access(template: dict[str, Any]) -> None:
    for logical_id, statement in policy_statements(template):
        if logical_id == "ReceiveThreatstreamFunction":
            assert not any(action.startswith("dynamodb:") for action in as_list(statement["Action"]))


def test_engine_access_limited_to_domain(template: dict[str, Any]) -> None:
    engine_statements = [
        statement
        for _, statement in policy_statements(template)
        if any(action.startswith("es:") for action in as_list(statement["Action"]))
    ]

    assert len(engine_statements) == len(FUNCTIONS)
    for statement in engine_statements:
        assert statement["Resource"] == [{"Ref": "OpenSearchDomainArn"}, {"Fn::Sub": "${OpenSearchDomainArn}/*"}]


def test_dead_letters_limited_to_prefix(template: dict[str, Any]) -> None:
    s3_statements = [
        statement
        for logical_id, statement in policy_statements(template)
        if logical_id != "DeadLetterBucketPolicy"
        and any(action.startswith("s3:") for action in as_list(statement["Action"]))
    ]

    assert s3_statements
    for statement in s3_statements:
        assert as_list(statement["Action"]) == ["s3:PutObject"]
        assert statement["Resource"] == {"Fn::Sub": "${DeadLetterBucket.Arn}/dead-letters/*"}


# --- Parameters, schedules, logs, alarms ---


def test_every_parameter_is_used(template: dict[str, Any]) -> None:
    used = set(referenced_names([template[section] for section in ("Conditions", "Globals", "Resources", "Outputs")]))

    assert set(template["Parameters"]) - used == set()


def test_parameters_described_and_constrained(template: dict[str, Any]) -> None:
    constraints = ("AllowedValues", "AllowedPattern", "MinValue")
    for name, spec in template["Parameters"].items():
        assert spec.get("Description"), f"{name} has no Description"
        assert any(key in spec for key in constraints), f"{name} has no allowed values, pattern or range"


def test_runtime_and_architecture(template: dict[str, Any]) -> None:
    function_globals = template["Globals"]["Function"]
    layer = template["Resources"]["SharedLayer"]

    assert function_globals["Runtime"] == "python3.12"
    assert function_globals["Architectures"] == ["arm64"]
    assert function_globals["Tracing"] == "Active"
    assert layer["Metadata"]["BuildArchitecture"] == "arm64"
    assert layer["Properties"]["CompatibleRuntimes"] == ["python3.12"]


@pytest.mark.parametrize("function_id", ["FetchIntelligenceFunction", "MaintainLatestFunction"])
def test_scheduled_functions_run_alone(template: dict[str, Any], function_id: str) -> None:
    schedules = [
        schedule["Properties"]["Target"]
        for schedule in resources_of_type(template, "AWS::Scheduler::Schedule").values()
        if schedule["Properties"]["Target"]["Arn"] == {"Fn::GetAtt": [function_id, "Arn"]}
    ]

    assert len(schedules) == 1
    assert schedules[0]["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert schedules[0]["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ScheduleDeadLetterQueue", "Arn"]}}
    assert template["Resources"][function_id]["Properties"]["ReservedConcurrentExecutions"] == 1


def test_latest_scheduled_event_matches_schedule(template: dict[str, Any]) -> None:
    sent = json.loads(template["Resources"]["LatestSchedule"]["Properties"]["Target"]["Input"])
    example = json.loads((EVENTS_DIR / "latest-scheduled.json").read_text())

    assert set(example) == set(sent)
    assert example["source"] == sent["source"]


@pytest.mark.parametrize("function_id", sorted(FUNCTIONS))
def test_function_logs_to_retained_group(template: dict[str, Any], function_id: str) -> None:
    function = template["Resources"][function_id]
    group_id = function["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
    group = template["Resources"][group_id]

    assert group["Type"] == "AWS::Logs::LogGroup"
    assert group["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}
    assert group.get("Condition") == function.get("Condition")


@pytest.mark.parametrize("function_id", sorted(FUNCTIONS))
@pytest.mark.parametrize("metric", ["Errors", "Throttles"])
def test_function_has_alarm(template: dict[str, Any], function_id: str, metric: str) -> None:
    alarms = [
        alarm["Properties"]
        for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values()
        if alarm["Properties"].get("MetricName") == metric
        and alarm["Properties"]["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function_id}}]
    ]

    assert len(alarms) == 1


def test_alarms_watch_emitted_metrics(template: dict[str, Any]) -> None:
    emitted = emitted_metric_names()
    watched = set()
    for alarm in resources_of_type(template, "AWS::CloudWatch::Alarm").values():
        properties = alarm["Properties"]
        if properties.get("Namespace") == {"Ref": "MetricsNamespace"}:
            watched.add(properties["MetricName"])
        for query in properties.get("Metrics", []):
            if "MetricStat" in query:
                watched.add(query["MetricStat"]["Metric"]["MetricName"])

    assert {"IndicatorsDeadLettered", "BacklogIndicators", "IndicatorsWritten", "LatestLagSeconds"} <= watched
    assert watched <= emitted, f"alarms watch metrics no handler emits: {sorted(watched - emitted)}"


# --- Events ---


@pytest.mark.parametrize("function_id", sorted(FUNCTIONS))
def test_function_has_events(function_id: str) -> None:
    _, prefix = FUNCTIONS[function_id]
    events = sorted(EVENTS_DIR.glob(f"{prefix}-*.json"))

    assert events, f"{function_id} has no events/{prefix}-*.json"
    for event in events:
        assert isinstance(json.loads(event.read_text()), dict), event.name
