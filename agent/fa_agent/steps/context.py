"""State one provisioning run passes from step to step.

Steps stay plain functions of a :class:`Context`; whatever a step set up
(mounts, arrays, volume groups) is recorded here so that cleanup can undo
it after a failure, whichever step failed.
"""

import logging
import os
import time

from fa_agent import discovery
from fa_agent import errors
from fa_agent.scheme import units
from fa_agent.steps import safepath

LOG = logging.getLogger(__name__)
MiB = units.MiB


class Context:
    """One run. ``runner`` makes changes; ``probe`` reads the state the
    run starts from (in a dry run the probe is real and the runner only
    records, so a dry run still resolves disks and checks keep_data)."""

    def __init__(self, request, runner, probe=None, status=None,
                 target_dir='/tmp/fa-target', settle_timeout=60,
                 image_policy=None):
        self.request = request
        self.scheme = request.scheme
        self.runner = runner
        self.probe = probe or runner
        self.status = status
        self.target_dir = target_dir
        self.settle_timeout = settle_timeout
        # fa_agent.images.policy.ImagePolicy; None: its safe default.
        self.image_policy = image_policy
        self.plan = None
        self.tables = {}
        self.signatures = {}
        self.mounts = []
        self.active_vgs = []
        self.started_arrays = []
        self.devices = {}  # the status file's result, by scheme id
        # What the kexec step loaded, for the result (None: not asked).
        self.kexec = None

    @property
    def dry_run(self):
        return self.runner.dry_run

    def path(self, obj_id):
        return self.plan.path(obj_id)

    def field(self, obj_id, name):
        """The JSON path of a storage object's field, for error messages
        (``$.scheme.storage[3].mount_point``)."""
        index = next((i for i, o in enumerate(self.scheme.storage)
                      if o.id == obj_id), None)
        if index is None:
            return '%s.%s' % (obj_id, name)
        return '$.scheme.storage[%d].%s' % (index, name)

    def kept(self, obj_id):
        """True when ``obj_id`` must not be recreated (see
        :meth:`Scheme.is_kept`)."""
        return self.scheme.is_kept(obj_id)

    def note(self, text):
        """A line of the plan that is not a command (a dry run shows it in
        order with the commands)."""
        LOG.info('%s', text)
        if self.dry_run:
            self.runner.commands.append(('#', text))

    def progress(self, message, percent=None):
        LOG.info('%s', message)
        if self.status is not None:
            self.status.progress(message, percent)

    def write_file(self, path, text):
        """Write ``path`` of the target (``/etc/fstab``): never through a
        symlink the image planted (:mod:`safepath`)."""
        self.note('write %s:\n%s' % (self.in_target(path),
                                     text.rstrip('\n')))
        if self.dry_run:
            return
        safepath.write_file(self.target_dir, path, text)

    def read_file(self, path):
        """The text of ``path`` in the target ('' when missing or in a dry
        run), not read through a symlink."""
        if self.dry_run:
            return ''
        return safepath.read_file(self.target_dir, path) or ''

    def in_target(self, path):
        """The ramdisk path of ``path`` in the target (``..`` refused)."""
        return os.path.normpath(os.path.join(
            self.target_dir, *safepath.components(path)))

    def target_subpath(self, directory):
        """``directory``'s path inside the target, or None when it lies
        outside the target."""
        root = self.target_dir.rstrip('/')
        if directory.rstrip('/') == root:
            return '/'
        if directory.startswith(root + '/'):
            return directory[len(root):]
        return None

    def target_dir_for(self, directory, purpose):
        """Make ``directory`` (a ramdisk path) ready to be used: below the
        target, walked without following symlinks the image planted."""
        inside = self.target_subpath(directory)
        if inside is None:
            os.makedirs(directory, exist_ok=True)  # the ramdisk's own
            return directory
        return safepath.ensure_dir(self.target_dir, inside, purpose)

    # -- devices -------------------------------------------------------------

    def table_on(self, disk_id):
        """The partition table the disk held when the run started."""
        if disk_id not in self.tables:
            self.tables[disk_id] = discovery.table(self.probe,
                                                   self.path(disk_id))
        return self.tables[disk_id]

    def signature_of(self, device_path, fresh=False):
        if fresh or device_path not in self.signatures:
            runner = self.runner if fresh else self.probe
            self.signatures[device_path] = discovery.signature(
                runner, device_path)
        return self.signatures[device_path]

    def uuid_of(self, fs_id):
        """The UUID of a file system (a placeholder in a dry run)."""
        uuid = self.signature_of(self.path(fs_id)).get('UUID')
        if uuid:
            return uuid
        if self.dry_run:
            return '<uuid of %s>' % fs_id
        raise errors.CommandFailed('blkid finds no UUID on %s (%s)'
                                   % (self.path(fs_id), fs_id))

    def remember(self, obj_id, **values):
        entry = self.devices.setdefault(obj_id, {})
        entry.update({k: v for k, v in values.items() if v is not None})

    def settle(self, disk_path, expected=None):
        """Make the kernel re-read ``disk_path``'s table; retry until it
        shows exactly ``expected`` ((start, size) bytes, or None: do not
        compare) and every partition node exists."""
        deadline = time.monotonic() + self.settle_timeout
        while True:
            try:
                self.runner.execute('partprobe', disk_path)
            except errors.CommandFailed:
                # Older kernels refuse BLKPG on a busy disk; BLKRRPART may
                # still work, and the comparison below decides.
                self.runner.execute('blockdev', '--rereadpt', disk_path,
                                    check_exit_code=False)
            self.runner.execute('udevadm', 'settle',
                                '--timeout=%d' % self.settle_timeout,
                                check_exit_code=False)
            if self.dry_run:
                return
            shown = discovery.kernel_partitions(self.runner, disk_path)
            if expected is None or sorted(expected) == shown:
                return
            if time.monotonic() > deadline:
                raise errors.CommandFailed(
                    'the kernel still shows partitions %s on %s instead of '
                    '%s after %d s' % (shown, disk_path, sorted(expected),
                                       self.settle_timeout))
            time.sleep(1)

    def wait_for_node(self, path):
        deadline = time.monotonic() + self.settle_timeout
        while not self.dry_run and not os.path.exists(path):
            if time.monotonic() > deadline:
                raise errors.CommandFailed('%s did not appear within %d s'
                                           % (path, self.settle_timeout))
            time.sleep(0.2)

    # -- mounts --------------------------------------------------------------

    def mount(self, device, directory, fstype=None, options=None, bind=False):
        if not self.dry_run:
            inside = self.target_subpath(directory)
            self.target_dir_for(directory, 'mount %s on %s' % (
                device, inside if inside is not None else directory))
        cmd = ['mount']
        if bind:
            cmd.append('--bind')
        if fstype:
            cmd += ['-t', fstype]
        if options:
            cmd += ['-o', options]
        self.runner.execute(*cmd, device, directory)
        self.mounts.append(directory)

    def unmount(self, directory):
        self.runner.execute('umount', directory)
        # The last mount on a directory is the one umount just removed.
        del self.mounts[len(self.mounts) - 1 -
                        self.mounts[::-1].index(directory)]

    def unmount_all(self):
        """Unmount what this run mounted, last first; keep going on
        errors so one busy mount does not hide the others."""
        failed = []
        for directory in reversed(list(self.mounts)):
            try:
                self.unmount(directory)
            except errors.CommandFailed as exc:
                LOG.error('cleanup: %s', exc)
                self.runner.execute('umount', '--lazy', directory,
                                    check_exit_code=False)
                del self.mounts[self.mounts.index(directory)]
                failed.append(directory)
        return failed
