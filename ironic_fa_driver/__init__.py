"""Ironic deploy interface ``fuel-agent`` and hardware types accepting it."""
