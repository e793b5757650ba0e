"""Serve one OpenStack WSGI application with gunicorn, run by the
services' own Python: ``python wsgi_server.py ADDRESS:PORT MODULE:APP``.

The applications parse ``sys.argv`` with oslo.config when they load, so
gunicorn's own command line must not reach them: this starts gunicorn
from Python with an empty argument list instead of its command.
"""

import importlib
import os
import sys

# This file's directory holds the lab's own modules (openstack.py among
# them), which must not shadow the services' packages.
sys.path[:] = [p for p in sys.path
               if os.path.abspath(p or '.') != os.path.dirname(
                   os.path.abspath(__file__))]

from gunicorn.app import base  # noqa: E402


class Server(base.BaseApplication):

    def __init__(self, bind, target):
        self.bind, self.target = bind, target
        super().__init__()

    def load_config(self):
        for key, value in (('bind', self.bind), ('workers', 1),
                           ('threads', 8), ('timeout', 300),
                           ('accesslog', '-')):
            self.cfg.set(key, value)

    def load(self):
        module, _, name = self.target.partition(':')
        application = getattr(importlib.import_module(module), name)
        orm = sys.modules.get('sqlalchemy.orm')
        if orm is not None:
            # Back-references between models exist only once the mappers
            # are configured, which the first query does. Neutron reads
            # one (Port.port_forwardings) before its first query when
            # that first request lists ports, as Nova's first one does.
            orm.configure_mappers()
        return application


def main():
    bind, target = sys.argv[1:3]
    sys.argv = sys.argv[:1]
    Server(bind, target).run()


if __name__ == '__main__':
    main()
