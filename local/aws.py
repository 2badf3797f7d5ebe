"""Moto in server mode, standing in for DynamoDB, Secrets Manager and S3 on loopback."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3

REGION = "us-east-1"
TABLE_NAME = "ti-anomali-local"
DEAD_LETTER_BUCKET = "ti-anomali-local-dead-letters"
THREATSTREAM_SECRET = "ti-anomali/local/threatstream"


@dataclass(frozen=True)
class LocalAws:
    """Endpoint of the moto server and the names of the resources made in it."""

    endpoint_url: str
    region: str = REGION
    table_name: str = TABLE_NAME
    dead_letter_bucket: str = DEAD_LETTER_BUCKET
    threatstream_secret: str = THREATSTREAM_SECRET

    def session(self) -> boto3.Session:
        """Return a boto3 session with dummy credentials aimed at nothing but the moto server."""
        return boto3.Session(aws_access_key_id="local", aws_secret_access_key="local", region_name=self.region)

    def client(self, service: str):  # noqa: ANN201 - boto3 clients have generated types
        """Return a client of `service` bound to the moto server."""
        return self.session().client(service, endpoint_url=self.endpoint_url)

    def environment(self) -> dict[str, str]:
        """Return the variables that point boto3 in this process at the moto server."""
        return {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_EC2_METADATA_DISABLED": "true",
        }

    def create_resources(self, username: str, api_key: str) -> None:
        """Create the cursor table, the dead-letter bucket and the ThreatStream secret."""
        dynamodb = self.client("dynamodb")
        dynamodb.create_table(
            TableName=self.table_name,
            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        self.client("s3").create_bucket(Bucket=self.dead_letter_bucket)
        self.put_threatstream_secret(username, api_key)

    def put_threatstream_secret(self, username: str, api_key: str) -> None:
        """Create or replace the ThreatStream secret."""
        secrets = self.client("secretsmanager")
        body = json.dumps({"username": username, "api_key": api_key})
        try:
            secrets.create_secret(Name=self.threatstream_secret, SecretString=body)
        except secrets.exceptions.ResourceExistsException:
            secrets.put_secret_value(SecretId=self.threatstream_secret, SecretString=body)


@contextmanager
def moto_server() -> Iterator[LocalAws]:
    """Run a moto server on a free loopback port for the duration of the block."""
    from moto.server import ThreadedMotoServer

    # The server's access log would bury the run's progress lines.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield LocalAws(endpoint_url=f"http://{host}:{port}")
    finally:
        server.stop()


@contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the block and restore the previous values after it."""
    previous = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in previous.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
