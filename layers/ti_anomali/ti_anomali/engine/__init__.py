"""Index templates, lifecycle policies and names, as data for both engines."""
