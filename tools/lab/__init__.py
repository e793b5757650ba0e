"""The lab: one QEMU node deployed through a real standalone Ironic with
the fuel-agent deploy interface, on this host alone.

Everything that talks on the network runs inside a network namespace the
lab creates (``fa-lab``), on addresses of the documentation range
192.0.2.0/24 chosen there; nothing in it can reach another host. Run it
with ``tools/lab.sh`` (see doc/source/lab.rst).
"""
