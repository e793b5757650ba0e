"""Provisioning agent of ironic-fa-driver, and the partitioning scheme
it shares with the conductor."""
