"""The simulated venue drop copy: execution reports derived from our fills, faults injected by seed."""

from connectors.dropcopy.publish import DropCopySummary, publish_drop_copy, read_fills
from connectors.dropcopy.simulator import DropCopyConfig, Report, drop_copy, fate

__all__ = ["DropCopyConfig", "DropCopySummary", "Report", "drop_copy", "fate", "publish_drop_copy", "read_fills"]
