"""GeoIP lookups against a MaxMind City database, giving the ECS `geo.*` fields."""

from __future__ import annotations

import os
from types import TracebackType
from typing import Any

import maxminddb

_LANGUAGE = "en"


class GeoIPDatabaseError(Exception):
    """A GeoIP database file is missing, unreadable or not a MaxMind database."""


class GeoIP:
    """A MaxMind City database (`.mmdb`), opened once and read by many lookups.

    The fields match those Elasticsearch's `geoip` processor writes by default for a City
    database: continent_name, country_iso_code, country_name, region_iso_code, region_name,
    city_name and location. A Country database gives the subset it holds.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        try:
            self._reader = maxminddb.open_database(self.path)
        except (OSError, ValueError, maxminddb.InvalidDatabaseError) as exc:
            raise GeoIPDatabaseError(f"cannot open GeoIP database {self.path}: {exc}") from exc

    def lookup(self, ip: str) -> dict[str, Any] | None:
        """Return the ECS geo fields for an IP address, or None when the database has no entry."""
        try:
            record = self._reader.get(ip)
        except ValueError:
            return None
        if not isinstance(record, dict):
            return None
        return _geo_fields(record) or None

    def close(self) -> None:
        """Close the database file."""
        self._reader.close()

    def __enter__(self) -> GeoIP:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"GeoIP(path={self.path!r})"


def _geo_fields(record: dict[str, Any]) -> dict[str, Any]:
    country = _section(record, "country")
    subdivisions = record.get("subdivisions")
    # NOTE: like GeoIP2's "most specific subdivision", which Elasticsearch reports as the region,
    # the last subdivision is the smallest one (England, then West Berkshire).
    subdivision = subdivisions[-1] if isinstance(subdivisions, list) and subdivisions else {}
    location = _section(record, "location")

    country_iso_code = country.get("iso_code")
    subdivision_iso_code = subdivision.get("iso_code") if isinstance(subdivision, dict) else None
    region_iso_code = (
        f"{country_iso_code}-{subdivision_iso_code}" if country_iso_code and subdivision_iso_code else None
    )

    fields = {
        "continent_name": _name(_section(record, "continent")),
        "country_iso_code": country_iso_code,
        "country_name": _name(country),
        "region_iso_code": region_iso_code,
        "region_name": _name(subdivision) if isinstance(subdivision, dict) else None,
        "city_name": _name(_section(record, "city")),
    }
    latitude, longitude = location.get("latitude"), location.get("longitude")
    if latitude is not None and longitude is not None:
        fields["location"] = {"lat": latitude, "lon": longitude}
    return {name: value for name, value in fields.items() if value is not None}


def _section(record: dict[str, Any], name: str) -> dict[str, Any]:
    section = record.get(name)
    return section if isinstance(section, dict) else {}


def _name(section: dict[str, Any]) -> str | None:
    names = section.get("names")
    if not isinstance(names, dict):
        return None
    name = names.get(_LANGUAGE)
    return name if isinstance(name, str) else None
