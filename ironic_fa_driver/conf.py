"""The ``[fuel_agent]`` and ``[fuel-redfish]`` sections of ironic.conf.

Registered on import, so the deploy interface (and its periodic task,
whose spacing is read lazily) always finds it; ``list_opts`` feeds
``oslo-config-generator --namespace ironic_fa_driver``.
"""

from oslo_config import cfg

GROUP = 'fuel_agent'

opts = [
    cfg.StrOpt('ssh_user', default='root',
               help='User the conductor logs in as on the deploy ramdisk. '
                    'Overridden per node by driver_info fa_ssh_user.'),
    cfg.StrOpt('ssh_key_file',
               help='Private key the conductor logs in to the ramdisk with. '
                    'When unset (the default), a fresh key pair is '
                    'made for every deploy and cleaning (see '
                    'key_secret_file) and only its public half is given to '
                    'the ramdisk (kernel parameter fa-ssh-key). When set, '
                    'it wins over key_secret_file. Must not be readable by '
                    'group or others.'),
    cfg.StrOpt('key_secret_file',
               help='File with a secret (at least 32 bytes, e.g. random '
                    'base64) shared by all conductors. When set, the key of '
                    'each deploy, cleaning and rescue is derived from it '
                    'and a random per-operation nonce stored on the node, '
                    'so any conductor can log in to the ramdisk and finish '
                    'an operation another one started; no private key is '
                    'stored. When unset, each operation\'s key pair is '
                    'kept in key_dir on the conductor that made it, which '
                    'is right for a single conductor only. Must be '
                    'readable by the conductor user only (mode 0600).'),
    cfg.PortOpt('ssh_port', default=22,
                help='SSH port of the ramdisk when its heartbeat does not '
                     'say. Overridden per node by driver_info fa_ssh_port.'),
    cfg.IntOpt('ssh_connect_timeout', default=30, min=1,
               help='Seconds to wait for the TCP connection, the SSH banner '
                    'and authentication.'),
    cfg.IntOpt('ssh_command_timeout', default=120, min=1,
               help='Seconds any single command or file transfer over SSH '
                    'may take. The agent itself runs detached and is not '
                    'bound by this.'),
    cfg.StrOpt('key_dir', default='$state_path/fuel_agent/keys',
               help='Directory on the conductor for per-deploy private '
                    'keys (one sub-directory per node, mode 0700).'),
    cfg.StrOpt('agent_command', default='provision',
               help='Command that starts the agent on the ramdisk; the '
                    'driver appends --input-data-file, --data-driver, '
                    '--status-file and --log-file (and --steps for '
                    'cleaning). Extra options may be given here, e.g. '
                    '"provision --debug".'),
    cfg.StrOpt('remote_work_dir', default='/run/fa-agent/deploy',
               help='Directory on the ramdisk for the agent input, the '
                    'start marker and the agent\'s exit code.'),
    cfg.StrOpt('image_ca_file',
               help='CA bundle (PEM) on the conductor that the agent uses, '
                    "instead of the ramdisk's system CAs, to verify https "
                    'image and configdrive servers. Uploaded next to the '
                    'agent input at every start of the agent.'),
    cfg.StrOpt('status_file', default='/run/fa-agent/status.json',
               help='Status file the agent writes on the ramdisk.'),
    cfg.StrOpt('log_file', default='/var/log/fa-agent/provision.log',
               help='Log file the agent writes on the ramdisk.'),
    cfg.IntOpt('deploy_timeout', default=7200, min=60,
               help='Seconds the agent may run (from its start) before '
                    'the deploy or cleaning is failed.'),
    cfg.IntOpt('status_poll_interval', default=15, min=1,
               help='Seconds between two polls of the agent\'s status file '
                    'by the conductor periodic task. A node whose ramdisk '
                    'reports the agent\'s status in its heartbeats is '
                    'polled only when that report is older than '
                    'heartbeat_status_max_age.'),
    cfg.IntOpt('status_poll_workers', default=8, min=1,
               help='How many nodes the periodic task polls at once over '
                    'SSH (one thread each).'),
    cfg.IntOpt('status_poll_timeout', default=15, min=1,
               help='Seconds one poll of a node may take to connect and '
                    'to read each status file, so an unreachable node '
                    'does not hold the periodic task; fetching the agent '
                    'log when the agent has finished uses '
                    'ssh_command_timeout.'),
    cfg.IntOpt('stranded_after', default=60, min=0,
               help='Seconds after which a node of this driver that has '
                    'been in "deploying" or "cleaning" that long, with no '
                    'conductor holding its lock and Ironic\'s "No free '
                    'conductor workers available" last in its history, is '
                    'asked to continue again: Ironic leaves a node so '
                    'when it has no free worker for the continuation. '
                    '0 turns this off.'),
    cfg.IntOpt('heartbeat_status_max_age', min=1,
               help='Seconds a "running" agent status from the ramdisk\'s '
                    'heartbeat stands for a poll. fa-heartbeat reports at '
                    'once when a step ends and the run ends, and otherwise '
                    'heartbeats every [api]ramdisk_heartbeat_timeout / 3 '
                    'seconds; older reports (or none, from a ramdisk '
                    'without status reporting) leave the node to the '
                    'poll. Default: 5/6 of [api]ramdisk_heartbeat_timeout '
                    '(250 s of 300), two and a half heartbeats.'),
    cfg.StrOpt('scheme_library_dir', default='/etc/ironic/fa-schemes',
               help='Directory of named partitioning schemes '
                    '(<name>.json) that instance_info capabilities '
                    'fa_scheme and the write_image step argument '
                    'scheme_name refer to, after the node\'s own '
                    'driver_info fa_schemes.'),
    cfg.StrOpt('extra_kernel_params', default='',
               help='Extra kernel parameters for the deploy ramdisk, '
                    'space separated, e.g. "console=ttyS0 nofb".'),
    cfg.StrOpt('agent_logs_collect', default='on_failure',
               choices=[('always', 'store the agent log after every run'),
                        ('on_failure', 'store it when the agent failed'),
                        ('never', 'never store it')],
               help='When to fetch the agent log from the ramdisk and '
                    'store it with Ironic\'s ramdisk log storage (where '
                    'is set by [agent]deploy_logs_storage_backend and '
                    '[agent]deploy_logs_local_path).'),
    cfg.IntOpt('agent_log_max_bytes', default=10 * 1024 * 1024, min=1024,
               help='At most this many bytes from the end of the agent log '
                    'are fetched.'),
    cfg.IntOpt('max_scheme_bytes', default=1024 * 1024, min=1024,
               help='Largest partitioning scheme (as JSON text) the '
                    'conductor accepts from driver_info, a deploy step '
                    'argument, a deploy template or the scheme library; '
                    'larger ones are refused before they are parsed. A '
                    'layout of hundreds of disks fits in a few hundred '
                    'KiB.'),
    cfg.IntOpt('erase_devices_metadata_priority', min=0,
               deprecated_for_removal=True,
               deprecated_reason='Ironic\'s own [deploy]'
                                 'erase_devices_metadata_priority sets it, '
                                 'as for IPA ramdisks; that one wins when '
                                 'both are set.',
               help='Priority of the erase_devices_metadata clean step in '
                    'automated cleaning, used only when [deploy]'
                    'erase_devices_metadata_priority is unset; 0 disables '
                    'it there. Unset: 99, IPA\'s default.'),
    cfg.BoolOpt('kexec', default=False,
                help='End deploys with kexec into the installed system '
                     'instead of a power cycle: one firmware boot per '
                     'deploy instead of two. The boot device is switched '
                     'to disk first; when the kernel cannot be loaded or '
                     'started the node is power cycled and the node '
                     'history says why. Per node: driver_info fa_kexec. '
                     'The network is switched to the tenant network '
                     'after the jump, while the installed system boots.'),
    cfg.IntOpt('soft_power_off_timeout', default=60, min=1,
               help='Seconds tear_down_agent waits for a soft power off '
                    'before powering the node off hard.'),
]

# Ironic's redfish code reads ``verify_ca`` from the configuration group
# named after the node's hardware type ([redfish] for ``redfish`` nodes).
# Without a [fuel-redfish] group every validation of a ``fuel-redfish``
# node failed with "no such option fuel-redfish in group [DEFAULT]"; this
# group exists, and follows [redfish] unless set itself.
REDFISH_GROUP = 'fuel-redfish'

redfish_opts = [
    cfg.StrOpt('verify_ca', default='${redfish.verify_ca}',
               help='CA bundle (file or directory) to verify the BMC\'s '
                    'certificate with, for fuel-redfish nodes whose '
                    'driver_info redfish_verify_ca is missing or True. '
                    'Defaults to [redfish] verify_ca.'),
]

CONF = cfg.CONF
CONF.register_opts(opts, group=GROUP)
CONF.register_opts(redfish_opts, group=REDFISH_GROUP)


def list_opts():
    """Options for oslo-config-generator."""
    return [(GROUP, opts), (REDFISH_GROUP, redfish_opts)]
