"""Anomali ThreatStream indicators, mapped to ECS and kept in OpenSearch or Elasticsearch."""

__version__ = "0.1.0"
