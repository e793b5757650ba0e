"""Ironic deploy interface ``fuel-agent`` and the hardware types that accept it."""
