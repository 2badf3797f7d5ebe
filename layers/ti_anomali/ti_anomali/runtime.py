"""Factories that build clients and adapters once per container from the typed settings."""

from __future__ import annotations

from typing import Any

import boto3
import requests
from aws_lambda_powertools import Logger
from aws_lambda_powertools.utilities import parameters

from ti_anomali import clock as clocks
from ti_anomali.adapters.cursor_store import CursorStore
from ti_anomali.adapters.dead_letters import DeadLetterStore
from ti_anomali.adapters.search_engine import BulkWriter, DataStreamSetup, EngineCredentials, build_client
from ti_anomali.adapters.threatstream import Credentials, ThreatStreamClient
from ti_anomali.ecs.geoip import GeoIP
from ti_anomali.ecs.intelligence import MappingOptions
from ti_anomali.fetch import FetchDependencies
from ti_anomali.latest import LatestDependencies
from ti_anomali.push import hmac_keys_from_secret
from ti_anomali.receive import HmacKeyring, PushDependencies
from ti_anomali.retry import Deadline
from ti_anomali.settings import EngineSettings, FetchSettings, LatestSettings, PushSettings, SettingsError

logger = Logger(service="ti-anomali", child=True)
SECRET_MAX_AGE_SECONDS = 300


def read_secret(name: str, *, force_fetch: bool = False) -> dict[str, Any]:
    """Read a JSON secret from Secrets Manager through Powertools' cache."""
    try:
        value = parameters.get_secret(name, transform="json", max_age=SECRET_MAX_AGE_SECONDS, force_fetch=force_fetch)
    except (parameters.exceptions.GetParameterError, parameters.exceptions.TransformParameterError) as exc:
        # The cause names the secret and the AWS error, never its value.
        raise SettingsError(
            f"reading secret {name} failed: check that it exists, contains JSON and that the function may read it"
        ) from exc
    if not isinstance(value, dict):
        raise SettingsError(f"secret {name} must hold a JSON object")
    return value


def credential_field(secret: dict[str, Any], secret_name: str, field: str, *, header: bool = True) -> str:
    """Return one credential of a secret; one sent as header text loses surrounding whitespace.

    Control characters inside header text are rejected: they would make the request fail with an
    error that quotes the header, credential included. A basic-auth password is base64-encoded
    before it is sent, so it is taken as it is.
    """
    value = secret.get(field)
    if not isinstance(value, str) or not value.strip():
        raise SettingsError(f"secret {secret_name} must hold a non-empty '{field}' string")
    if not header:
        return value
    value = value.strip()
    if any(ord(character) < 32 or ord(character) == 127 for character in value):
        raise SettingsError(f"secret {secret_name}: '{field}' contains a control character such as a line break")
    return value


def read_threatstream_credentials(secret_name: str, *, force_fetch: bool = False) -> Credentials:
    """Read `{"username": ..., "api_key": ...}` from the ThreatStream secret."""
    secret = read_secret(secret_name, force_fetch=force_fetch)
    return Credentials(
        username=credential_field(secret, secret_name, "username"),
        api_key=credential_field(secret, secret_name, "api_key"),
    )


def read_engine_credentials(settings: EngineSettings) -> EngineCredentials | None:
    """Read the engine secret for basic or API-key auth; SigV4 and `none` need none."""
    if settings.auth not in ("basic", "api-key") or not settings.secret_name:
        return None
    name = settings.secret_name
    secret = read_secret(name)
    if settings.auth == "api-key":
        return EngineCredentials(api_key=credential_field(secret, name, "api_key"))
    return EngineCredentials(
        username=credential_field(secret, name, "username"),
        password=credential_field(secret, name, "password", header=False),
    )


def build_engine_client(settings: EngineSettings, boto_session: Any = None) -> Any:
    """Build the OpenSearch client, with SigV4 credentials from the function's role if needed."""
    aws_credentials = None
    if settings.auth == "sigv4":
        aws_credentials = (boto_session or boto3.Session()).get_credentials()
    if not settings.tls_verify:
        logger.warning("TLS verification of the engine is off", reason="ENGINE_TLS_VERIFY=false")
    return build_client(settings, read_engine_credentials(settings), aws_credentials)


def build_latest_dependencies(settings: LatestSettings, boto_session: Any = None) -> LatestDependencies:
    """Build the engine client and checkpoint store of the latest function."""
    session = boto_session or boto3.Session()
    return LatestDependencies(
        settings=settings,
        engine_client=build_engine_client(settings.engine, session),
        cursors=CursorStore(session.client("dynamodb"), settings.cursor_table),
        clock=clocks.current(),
    )


def build_fetch_dependencies(
    settings: FetchSettings,
    deadline: Deadline,
    boto_session: Any = None,
    http_session: requests.Session | None = None,
) -> FetchDependencies:
    """Build every adapter the fetch function needs, reading secrets once."""
    session = boto_session or boto3.Session()
    clock = clocks.current()
    if not settings.tls_verify:
        logger.warning("TLS verification of ThreatStream is off", reason="THREATSTREAM_TLS_VERIFY=false")
    verify: bool | str = settings.ca_bundle_path or settings.tls_verify
    api = ThreatStreamClient(
        settings.threatstream_url,
        read_threatstream_credentials(settings.threatstream_secret_name),
        http_session or requests.Session(),
        timeout_seconds=settings.http_timeout_seconds,
        verify=verify,
        clock=clock,
        deadline=deadline,
        reload_credentials=lambda: read_threatstream_credentials(settings.threatstream_secret_name, force_fetch=True),
    )
    engine_client = build_engine_client(settings.engine, session)
    dead_letters = DeadLetterStore(session.client("s3"), settings.engine.dead_letter_bucket)
    writer = BulkWriter(
        engine_client,
        dead_letters,
        clock,
        deadline,
        request_timeout_seconds=settings.engine.timeout_seconds,
    )
    geoip = GeoIP(settings.geoip_database_path) if settings.geoip_database_path else None
    mapping_options = MappingOptions(
        now=clock.now(),
        ioc_duration=settings.ioc_duration,
        tags=settings.tags,
        preserve_original=settings.preserve_original_event,
        namespace=settings.engine.namespace,
        geoip=geoip,
    )
    return FetchDependencies(
        settings=settings,
        api=api,
        cursors=CursorStore(session.client("dynamodb"), settings.cursor_table),
        setup=DataStreamSetup(engine_client, settings.engine.kind),
        writer=writer,
        engine_client=engine_client,
        clock=clock,
        mapping_options=mapping_options,
    )


def read_hmac_keys(secret_name: str, *, force_fetch: bool = False) -> tuple[str, ...]:
    """Read the push endpoint's HMAC keys: `{"hmac_keys": [current, previous]}` or `{"hmac_key": key}`."""
    secret = read_secret(secret_name, force_fetch=force_fetch)
    try:
        return hmac_keys_from_secret(secret)
    except ValueError as exc:
        raise SettingsError(f"secret {secret_name}: {exc}") from None


def build_push_dependencies(settings: PushSettings, deadline: Deadline, boto_session: Any = None) -> PushDependencies:
    """Build every adapter the push function needs, reading the HMAC keys once."""
    session = boto_session or boto3.Session()
    clock = clocks.current()

    keyring = None
    secret_name = settings.secret_name
    if settings.auth == "hmac" and secret_name:
        keyring = HmacKeyring(lambda force: read_hmac_keys(secret_name, force_fetch=force), clock)
    elif settings.auth == "none":
        logger.warning(
            "the push endpoint accepts indicators from anyone",
            reason="PUSH_AUTH=none and PUSH_ALLOW_OPEN_ENDPOINT=true",
        )

    engine_client = build_engine_client(settings.engine, session)
    writer = BulkWriter(
        engine_client,
        DeadLetterStore(session.client("s3"), settings.engine.dead_letter_bucket),
        clock,
        deadline,
        request_timeout_seconds=settings.engine.timeout_seconds,
    )
    return PushDependencies(
        settings=settings,
        keyring=keyring,
        setup=DataStreamSetup(engine_client, settings.engine.kind),
        writer=writer,
        engine_client=engine_client,
        clock=clock,
        geoip=GeoIP(settings.geoip_database_path) if settings.geoip_database_path else None,
    )
