"""hftstream core: record serde, the log abstraction (embedded and Kafka), topics, replay, the CLI."""

__version__ = "0.1.0"
