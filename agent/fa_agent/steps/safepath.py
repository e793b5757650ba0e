"""Paths inside the target directory that the image cannot redirect.

The target holds what a tenant's image brought: a symlink it plants at
``/etc`` or ``/boot/efi`` would otherwise make the agent (root, in the
ramdisk) write ``/etc/fstab`` or mount the ESP outside the target. Each
path is walked one component at a time from a directory descriptor of the
target root with ``O_NOFOLLOW``: a symlink, ``..`` or a non-directory on
the way is refused, missing directories are made with ``mkdir`` relative
to their parent's descriptor, and files are opened relative to the last
one. No process from the image runs while the agent works, so what the
walk saw is what the following ``mount`` or ``cp`` sees.
"""

import os
import stat

from fa_agent import errors

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_KINDS = ((stat.S_ISLNK, 'a symlink'), (stat.S_ISDIR, 'a directory'),
          (stat.S_ISBLK, 'a block device'), (stat.S_ISCHR,
                                             'a character device'),
          (stat.S_ISFIFO, 'a fifo'), (stat.S_ISSOCK, 'a socket'),
          (stat.S_ISREG, 'a file'))


def components(path):
    """The names of ``path`` inside the target (``/`` is the target
    root); ``..`` is refused, empty and ``.`` components are dropped."""
    names = [n for n in path.split('/') if n not in ('', '.')]
    if '..' in names:
        raise errors.BadInput('%s: a path in the target must not contain '
                              '"..": it would leave the target' % path)
    return names


def _kind(mode):
    return next(name for test, name in _KINDS if test(mode))


def _refuse(shown, mode, purpose):
    if stat.S_ISLNK(mode):
        return errors.BadInput('the image plants a symlink at %s in the '
                               'target: refusing to %s through it'
                               % (shown, purpose))
    return errors.BadInput('the image has %s at %s in the target where a '
                           'directory is needed: refusing to %s'
                           % (_kind(mode), shown, purpose))


def _not_a_file(shown, kind, purpose):
    return errors.BadInput('the image has %s at %s in the target where a '
                           'file is needed: refusing to %s'
                           % (kind, shown, purpose))


def _open_root(root, create):
    if create:
        os.makedirs(root, exist_ok=True)  # the ramdisk's own directory
    try:
        return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None


def open_dir(root, names, purpose, create=False):
    """A descriptor of the directory ``names`` below ``root``, or None
    when it is missing and ``create`` is false. The caller closes it."""
    fd = _open_root(root, create)
    if fd is None:
        return None
    walked = ''
    try:
        for name in names:
            walked += '/' + name
            child = _step(fd, name, walked, purpose, create)
            os.close(fd)
            fd = child
            if fd is None:
                return None
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise
    return fd


def _step(fd, name, walked, purpose, create):
    """Open (or make) the directory ``name`` in ``fd``, not through a
    symlink; None when it is missing and not to be made."""
    for _ in range(2):
        try:
            return os.open(name, _DIR_FLAGS, dir_fd=fd)
        except FileNotFoundError:
            if not create:
                return None
            try:
                os.mkdir(name, 0o755, dir_fd=fd)
            except FileExistsError:
                pass  # open it (or refuse what is there) on the next turn
        except OSError as exc:
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except OSError:
                st = None
            if st is None or stat.S_ISDIR(st.st_mode):
                raise errors.CommandFailed('cannot open %s in the target: '
                                           '%s' % (walked, exc)) from exc
            raise _refuse(walked, st.st_mode, purpose) from None
    return os.open(name, _DIR_FLAGS, dir_fd=fd)


def ensure_dir(root, path, purpose):
    """Make the directory ``path`` in the target (no symlink on the way)
    and return its full path in the ramdisk."""
    os.close(open_dir(root, components(path), purpose, create=True))
    return os.path.join(root, *components(path))


def list_dir(root, path, purpose):
    """The names in directory ``path`` of the target, None if missing."""
    fd = open_dir(root, components(path), purpose)
    if fd is None:
        return None
    try:
        return os.listdir(fd)
    finally:
        os.close(fd)


def is_dir(root, path, purpose):
    fd = open_dir(root, components(path), purpose)
    if fd is None:
        return False
    os.close(fd)
    return True


def _open_file(root, path, flags, purpose, create):
    names = components(path)
    if not names:
        raise errors.BadInput('%s is the target root, not a file' % path)
    parent = open_dir(root, names[:-1], purpose, create=create)
    if parent is None:
        return None
    try:
        try:
            st = os.stat(names[-1], dir_fd=parent, follow_symlinks=False)
        except FileNotFoundError:
            if not create:
                return None
        else:
            if stat.S_ISLNK(st.st_mode):
                raise _refuse(path, st.st_mode, purpose)
            if not stat.S_ISREG(st.st_mode):
                raise _not_a_file(path, _kind(st.st_mode), purpose)
        # O_NONBLOCK: a fifo swapped in cannot hang the agent; the fstat
        # below refuses it (and anything else that is no regular file).
        fd = os.open(names[-1], flags | os.O_NOFOLLOW | os.O_NONBLOCK |
                     os.O_CLOEXEC, 0o644, dir_fd=parent)
    finally:
        os.close(parent)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise _not_a_file(path, 'no regular file', purpose)
    os.set_blocking(fd, True)
    return fd


def write_file(root, path, text):
    """Write ``text`` to ``path`` in the target (created or replaced)."""
    try:
        data = text.encode('utf-8', errors='surrogateescape')
    except UnicodeEncodeError as exc:
        raise errors.BadInput('%s: the text to write is no valid UTF-8: %s'
                              % (path, exc)) from None
    fd = _open_file(root, path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC,
                    'write %s' % path, create=True)
    with open(fd, 'wb') as f:
        f.write(data)


def open_read(root, path, purpose):
    """A descriptor of file ``path`` in the target opened for reading
    (the caller closes it), None when it does not exist."""
    return _open_file(root, path, os.O_RDONLY, purpose, create=False)


def read_file(root, path):
    """The text of ``path`` in the target, None when it does not exist."""
    fd = _open_file(root, path, os.O_RDONLY, 'read %s' % path,
                    create=False)
    if fd is None:
        return None
    with open(fd, encoding='utf-8', errors='surrogateescape') as f:
        return f.read()
