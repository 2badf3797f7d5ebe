"""Mapping of ThreatStream objects to Elastic Common Schema (ECS) documents, with no I/O but GeoIP reads."""
