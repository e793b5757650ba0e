"""Root trees shipped as tar archives, extracted into a mounted file
system by GNU tar.

Owners are taken by number (the ramdisk's user names mean nothing for the
target), modes are kept exactly, and ACLs and every xattr namespace are
restored: without ``--xattrs-include='*'`` GNU tar restores only
``user.*``, and file capabilities (``security.capability``, e.g. on
ping) would be lost. The archive is streamed into tar's standard input
through the same download, checksum and decompression pipeline as disk
images.
"""

import subprocess
import tempfile

from fa_agent import errors

TAR_COMMAND = ('tar', '--extract', '--file=-', '--numeric-owner',
               '--preserve-permissions', '--same-owner', '--xattrs',
               '--xattrs-include=*', '--acls')


class TarSink:
    """Feeds a running ``tar --extract`` into ``directory``."""

    def __init__(self, directory):
        self.directory = directory
        self._start()

    def _start(self):
        self._stderr = tempfile.TemporaryFile()
        try:
            self._process = subprocess.Popen(
                [*TAR_COMMAND, '--directory', self.directory],
                stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                stderr=self._stderr, bufsize=0)
        except OSError as exc:
            self._stderr.close()
            raise errors.CommandFailed('cannot run tar: %s' % exc) from exc

    def write(self, data):
        try:
            self._process.stdin.write(data)
        except BrokenPipeError:
            self.finish()
            raise errors.CommandFailed('tar stopped reading the archive')

    def rewind(self):
        """Start again: files already extracted are overwritten."""
        self.abort()
        self._start()

    def finish(self):
        """Wait for tar; raises with its messages when it failed."""
        try:
            self._process.stdin.close()
        except BrokenPipeError:
            pass
        status = self._process.wait()
        self._stderr.seek(0)
        messages = self._stderr.read().decode(errors='replace').strip()
        self._stderr.close()
        if status:
            raise errors.CommandFailed(
                'tar failed extracting into %s (exit status %d): %s'
                % (self.directory, status, messages))

    def abort(self):
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()
        self._process.stdin.close()
        self._stderr.close()
