"""Options of the ``provision`` command (command line and config file).

The agent keeps its own ConfigOpts object instead of oslo.config's global
one, so tests (and the conductor, which may import the agent) never share
option state with it.
"""

from oslo_config import cfg

from fa_agent import steps
from fa_agent.images import policy

cli_opts = [
    cfg.StrOpt('input-data-file', default='/tmp/provision.json',
               help='Provisioning input (JSON) read by the data driver.'),
    cfg.StrOpt('input-data-url',
               help='Fetch the provisioning input over HTTP(S) instead of '
                    'reading --input-data-file.'),
    cfg.StrOpt('data-driver', default='ironic',
               help='Input format: name of a plug-in in the '
                    'fa_agent.data_drivers entry point group.'),
    cfg.BoolOpt('dry-run', default=False,
                help='Print the plan and every command it would run, with '
                     'resolved devices and sizes; change nothing.'),
    cfg.ListOpt('steps', default=list(steps.ORDER),
                help='Steps to run, always in their fixed order (%s). '
                     'discover and cleanup always run.'
                     % ', '.join(steps.ORDER)),
    cfg.StrOpt('status-file', default='/run/fa-agent/status.json',
               help='Machine-readable status (JSON), rewritten atomically '
                    'after every change.'),
    cfg.StrOpt('log-file', default='/var/log/fa-agent/provision.log',
               help='Full log of the run; also printed to stderr.'),
    cfg.BoolOpt('debug', default=False,
                help='Log at DEBUG level (every command and its output).'),
    cfg.StrOpt('target-dir', default='/tmp/fa-target',
               help='Where the new system is mounted while it is set up.'),
    cfg.IntOpt('command-timeout', default=3600, min=1,
               help='Seconds any one command may run.'),
    cfg.IntOpt('settle-timeout', default=60, min=1,
               help='Seconds to wait for the kernel to show a new partition '
                    'table and its device nodes.'),
    cfg.IntOpt('input-retries', default=5, min=1,
               help='Attempts to fetch --input-data-url.'),
    cfg.ListOpt('file-url-allowed-paths',
                default=list(policy.DEFAULT_FILE_URL_ALLOWED_PATHS),
                help='Directories that file:// image and configdrive URLs '
                     'may point into (after symlinks are resolved), like '
                     "Ironic's [conductor]file_url_allowed_paths; /dev, "
                     '/sys, /proc, /boot, /etc and /run never are. Empty: '
                     'file:// URLs are refused.'),
    cfg.StrOpt('image-ca-file',
               help='CA bundle (PEM) that verifies https image and '
                    "configdrive servers instead of the system's."),
    cfg.BoolOpt('allow-md5-checksum', default=False,
                help="Accept md5 image checksums (Ironic's [agent] "
                     'allow_md5_checksum, passed on by the conductor).'),
]


def new_conf():
    """A ConfigOpts with every agent option registered."""
    conf = cfg.ConfigOpts()
    conf.register_cli_opts(cli_opts)
    return conf


def list_opts():
    """For oslo-config-generator (entry point oslo.config.opts)."""
    return [('DEFAULT', cli_opts)]
