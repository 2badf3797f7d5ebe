"""Dead-letter store in S3: documents the engine rejected for good, kept whole with the reason."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError


class DeadLetterError(Exception):
    """A dead letter could not be stored; the page must not count as written."""


@dataclass(frozen=True)
class DeadLetter:
    """One rejected document and why the engine rejected it."""

    index: str
    document_id: str
    document: dict[str, Any]
    status: int
    error_type: str
    reason: str


class DeadLetterStore:
    """Writes dead letters as one JSON object each under `dead-letters/<index>/<date>/`."""

    def __init__(self, s3_client: Any, bucket: str, prefix: str = "dead-letters") -> None:
        self._client = s3_client
        self._bucket = bucket
        self._prefix = prefix

    def key_for(self, letter: DeadLetter, at: datetime) -> str:
        """Return the object key; the same document rejected twice on a day lands on the same key."""
        safe_id = hashlib.sha256(letter.document_id.encode()).hexdigest()[:32]
        return f"{self._prefix}/{letter.index}/{at:%Y/%m/%d}/{safe_id}.json"

    def put(self, letter: DeadLetter, at: datetime) -> str:
        """Store one dead letter and return its key; raises `DeadLetterError` on failure."""
        key = self.key_for(letter, at)
        body = {
            "failed_at": at.isoformat(),
            "index": letter.index,
            "document_id": letter.document_id,
            "status": letter.status,
            "error": {"type": letter.error_type, "reason": letter.reason},
            "document": letter.document,
        }
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=json.dumps(body, separators=(",", ":")).encode(),
                ContentType="application/json",
            )
        except (BotoCoreError, ClientError) as exc:
            raise DeadLetterError(f"storing dead letter {key} in bucket {self._bucket} failed") from exc
        return key

    def list_keys(self) -> list[str]:
        """Return every dead-letter key (local runs and tests)."""
        keys: list[str] = []
        paginator = self._client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=self._prefix + "/"):
            keys.extend(item["Key"] for item in page.get("Contents", []))
        return keys
