"""Run by QEMU for each TCP connection the guest opens to a ``guestfwd``
address (see :class:`qemu_guest.ImageServer`): slirp hands the
connection over as file descriptor 0; this relays it to HOST PORT on the
host's loopback until both sides are done.

Usage: guestfwd_relay.py HOST PORT
"""

import socket
import sys
import threading


def pump(source, sink):
    while True:
        data = source.recv(1 << 16)
        if not data:
            break
        sink.sendall(data)
    try:
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the other side is gone already


def main(host, port):
    guest = socket.socket(fileno=0)
    server = socket.create_connection((host, int(port)))
    back = threading.Thread(target=pump, args=(server, guest))
    back.start()
    pump(guest, server)
    back.join()


if __name__ == '__main__':
    main(*sys.argv[1:3])
