"""Operator commands: signing, verification (shared by the CLI, risk and reconcile)."""
