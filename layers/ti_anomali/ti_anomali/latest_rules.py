"""Rules of the latest index, as pure code: which update of an indicator wins, and what is live.

The latest index contains one document per (dataset, indicator id): the update with the highest
`update_id`, while that update is live. An update is live when its status is one of the live
statuses, it has not expired, and no guardrail holds it back. Elastic's transform keeps the
update with the newest `@timestamp` instead, and keeps retired (`inactive`, `falsepos`)
indicators until they expire. This product does neither, so a replayed old update never wins
and a withdrawn indicator stops matching at once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from ti_anomali.ecs.common import get_field, parse_timestamp

EXPIRY_GRACE = timedelta(minutes=1)


@dataclass(frozen=True)
class LatestDataset:
    """Source pattern of a dataset and the fields of its documents that the rules read."""

    name: str
    expiry_field: str
    status_field: str

    @property
    def event_dataset(self) -> str:
        return f"ti_anomali.{self.name}"

    @property
    def source_pattern(self) -> str:
        return f"logs-ti_anomali.{self.name}-*"


INTELLIGENCE = LatestDataset(
    "intelligence", "anomali.threatstream.deletion_scheduled_at", "anomali.threatstream.status"
)
THREATSTREAM = LatestDataset("threatstream", "anomali.threatstream.deleted_at", "anomali.threatstream.state")
DATASETS = {dataset.name: dataset for dataset in (INTELLIGENCE, THREATSTREAM)}


class Verdict(StrEnum):
    """Decision on the newest update of an indicator: enter the latest index, or leave it and why."""

    LIVE = "live"
    RETIRED = "retired"
    EXPIRED = "expired"
    HELD_BACK = "held_back"


@dataclass(frozen=True)
class Guardrails:
    """Values, networks and TLP markings that never enter the latest index (off when empty)."""

    values: frozenset[str] = frozenset()
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    domain_suffixes: tuple[str, ...] = ()
    blocked_tlp: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, values: Iterable[str], networks: Iterable[str], blocked_tlp: Iterable[str]) -> Guardrails:
        """Build guardrails from settings; a value starting with `.` allows a domain and its subdomains."""
        plain = {value.strip().lower() for value in values if value.strip()}
        suffixes = tuple(sorted(value for value in plain if value.startswith(".")))
        return cls(
            values=frozenset(value for value in plain if not value.startswith(".")),
            networks=tuple(
                ipaddress.ip_network(network.strip(), strict=False) for network in networks if network.strip()
            ),
            domain_suffixes=suffixes,
            blocked_tlp=frozenset(tlp.strip().upper() for tlp in blocked_tlp if tlp.strip()),
        )

    def holds_back(self, document: dict[str, Any]) -> bool:
        """Return True when the document matches an allowlisted value or network, or a blocked TLP."""
        indicator = get_field(document, "threat.indicator") or {}
        tlp = get_field(indicator, "marking.tlp")
        markings = tlp if isinstance(tlp, list) else [tlp]
        if any(isinstance(marking, str) and marking.upper() in self.blocked_tlp for marking in markings):
            return True
        for value in _indicator_values(document):
            if value.lower() in self.values:
                return True
            if any(value.lower().endswith(suffix) or "." + value.lower() == suffix for suffix in self.domain_suffixes):
                return True
            if self.networks and _in_networks(value, self.networks):
                return True
        return False


def _indicator_values(document: dict[str, Any]) -> list[str]:
    candidates = [
        get_field(document, "threat.indicator.ip"),
        get_field(document, "threat.indicator.url.domain"),
        get_field(document, "threat.indicator.url.original"),
        get_field(document, "threat.indicator.email.address"),
        get_field(document, "threat.indicator.name"),
        get_field(document, "anomali.threatstream.value"),
    ]
    return [value for value in candidates if isinstance(value, str) and value]


def _in_networks(value: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]) -> bool:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return False
    return any(address in network for network in networks)


def indicator_key(document: dict[str, Any]) -> tuple[str, int] | None:
    """Return (indicator id, update_id) of a source document, or None when either is missing or invalid."""
    indicator_id = get_field(document, "anomali.threatstream.id")
    update_id = get_field(document, "anomali.threatstream.update_id")
    if not isinstance(indicator_id, str) or not indicator_id:
        return None
    try:
        return indicator_id, int(str(update_id))
    except ValueError:
        return None


def expires_at(document: dict[str, Any], dataset: LatestDataset) -> datetime | None:
    """Return when the document leaves the latest index by expiry, or None when it never does."""
    value = get_field(document, dataset.expiry_field)
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_timestamp(value)
    except ValueError:
        return None


def judge(
    document: dict[str, Any],
    dataset: LatestDataset,
    live_statuses: frozenset[str],
    guardrails: Guardrails,
    now: datetime,
) -> Verdict:
    """Decide whether the newest update of an indicator belongs in the latest index.

    "Expired" means the expiry time lies more than one minute before `now`, as Elastic's
    transform retention has it.
    """
    status = get_field(document, dataset.status_field)
    if not isinstance(status, str) or status.lower() not in live_statuses:
        return Verdict.RETIRED
    expiry = expires_at(document, dataset)
    if expiry is not None and expiry < now - EXPIRY_GRACE:
        return Verdict.EXPIRED
    if guardrails.holds_back(document):
        return Verdict.HELD_BACK
    return Verdict.LIVE


def newest_per_indicator(documents: Iterable[dict[str, Any]]) -> dict[str, tuple[int, dict[str, Any]]]:
    """Keep, for each indicator id, the document with the highest update_id (order does not matter)."""
    newest: dict[str, tuple[int, dict[str, Any]]] = {}
    for document in documents:
        key = indicator_key(document)
        if key is None:
            continue
        indicator_id, update_id = key
        if indicator_id not in newest or update_id > newest[indicator_id][0]:
            newest[indicator_id] = (update_id, document)
    return newest
