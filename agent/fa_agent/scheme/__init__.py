"""The partitioning scheme: its JSON Schema, model, validator and planner.

Defined once here and imported by both the agent (ramdisk side) and the
Ironic deploy interface (conductor side).
"""
