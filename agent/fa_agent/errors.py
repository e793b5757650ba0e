"""Failure classes of a provisioning run and their exit codes.

The driver reads the class from the status file and the exit code from
the process; both name the same failure.
"""


class ProvisionError(Exception):
    """Base class: ``error_class`` and ``exit_code`` identify the failure."""

    error_class = 'internal'
    exit_code = 1


class BadInput(ProvisionError):
    error_class = 'bad_input'
    exit_code = 10


class DiskNotFound(ProvisionError):
    """A matcher hit no disk, or more than one."""

    error_class = 'disk_not_found'
    exit_code = 11


class DoesNotFit(ProvisionError):
    error_class = 'does_not_fit'
    exit_code = 12


class CommandFailed(ProvisionError):
    error_class = 'command_failed'
    exit_code = 13


class ImageDownloadFailed(ProvisionError):
    error_class = 'image_download'
    exit_code = 14


class ChecksumMismatch(ProvisionError):
    error_class = 'checksum_mismatch'
    exit_code = 15


class BootloaderFailed(ProvisionError):
    error_class = 'bootloader'
    exit_code = 16


class KeepDataMismatch(ProvisionError):
    """The disks do not hold what the scheme says must be kept."""

    error_class = 'keep_data_mismatch'
    exit_code = 17


ALL = (ProvisionError, BadInput, DiskNotFound, DoesNotFit, CommandFailed,
       ImageDownloadFailed, ChecksumMismatch, BootloaderFailed,
       KeepDataMismatch)
EXIT_CODES = {cls.error_class: cls.exit_code for cls in ALL}
