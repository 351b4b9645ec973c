"""Operators: the ops page, the audit log, health and metrics."""
