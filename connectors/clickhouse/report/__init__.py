"""The tape report: one self-contained HTML page (inline SVG, no scripts, nothing fetched) from the analytics views."""

from connectors.clickhouse.report.html import ReportParams, build_report

__all__ = ["ReportParams", "build_report"]
