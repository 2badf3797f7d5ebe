"""The push function's HMAC key on the local stack: stored in moto's Secrets Manager from a fixture.

The key in `tests/fixtures/threatstream/local-push-secret.json` signs the events in `events/`; it
is a published test value, not a secret.
"""

from __future__ import annotations

from pathlib import Path

from local.aws import LocalAws

LOCAL_PUSH_SECRET_NAME = "ti-anomali/local/push-hmac"
FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
LOCAL_PUSH_SECRET_FILE = FIXTURES / "threatstream" / "local-push-secret.json"


def store_local_push_secret(aws: LocalAws) -> None:
    """Create or replace the local push secret in the moto server."""
    secrets = aws.client("secretsmanager")
    body = LOCAL_PUSH_SECRET_FILE.read_text()
    try:
        secrets.create_secret(Name=LOCAL_PUSH_SECRET_NAME, SecretString=body)
    except secrets.exceptions.ResourceExistsException:
        secrets.put_secret_value(SecretId=LOCAL_PUSH_SECRET_NAME, SecretString=body)
