"""What the lab deploys with: the bootstrap ramdisk and the test OS
images (built or reused from the shared cache by the project's own build
scripts), and a small tarball the lab makes itself.

The lab's own tarball puts a marker file with a fresh token on the data
volume; the installed system reports it at boot, which shows whether a
kept volume's file survives a redeploy.
"""

import dataclasses
import hashlib
import io
import json
import os
import subprocess
import tarfile

from lab import settings

# The test image's FA-MARKER reports this file's first line for every
# mounted file system that has one (agent/testimages).
MARKER_FILE = 'fa-keep.txt'


class ArtifactError(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class Image:
    """One image file and how the agent is to read it."""

    path: str
    format: str
    sha256: str
    compression: str = None


def _build(script, lab):
    argv = [os.path.join(settings.ROOT, 'tools', script), '--json',
            '--cache-dir', lab.cache_dir]
    result = subprocess.run(argv, capture_output=True, text=True)
    if result.returncode:
        raise ArtifactError('tools/%s failed:\n%s' % (
            script, (result.stderr or result.stdout)[-3000:]))
    try:
        return json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise ArtifactError('tools/%s printed no JSON record: %r'
                            % (script, result.stdout[-500:]))


def ramdisk(lab):
    """The build record of tools/build-ramdisk.sh (kernel, initramfs)."""
    return _build('build-ramdisk.sh', lab)


def test_images(lab):
    """{name: Image} from tools/build-test-images.sh: ``fs_image``,
    ``tar``, ``whole_disk``."""
    record = _build('build-test-images.sh', lab)
    images = {}
    for artifact in record.get('artifacts') or ():
        try:
            images[artifact['name']] = Image(
                artifact['path'], artifact['format'], artifact['sha256'],
                artifact.get('compression'))
        except KeyError as exc:
            raise ArtifactError('tools/build-test-images.sh: artifact %r '
                                'has no %s' % (artifact, exc))
    if 'fs_image' not in images:
        raise ArtifactError('tools/build-test-images.sh built no fs_image '
                            '(got %s)' % ', '.join(images) or 'nothing')
    record['images'] = images
    return record


def uncompressed(lab, image):
    """``image`` decompressed into the lab's images directory (made once
    per lab). For Glance: Ironic's conductor decompresses a compressed
    image in its cache but hands the agent the checksum Glance computed
    over the compressed bytes, which the agent then refuses."""
    if not image.compression:
        return image
    if image.compression != 'zstd':
        raise ArtifactError('cannot decompress %s (%s)'
                            % (image.path, image.compression))
    name = os.path.basename(image.path)
    path = lab.path('images', name[:-len('.zst')] if name.endswith('.zst')
                    else name + '.raw')
    if not os.path.exists(path):
        subprocess.run(['zstd', '-d', '-q', '-f', '-o', path + '.part',
                        image.path], check=True)
        os.replace(path + '.part', path)
    with open(path, 'rb') as f:
        digest = hashlib.file_digest(f, 'sha256').hexdigest()
    return Image(path, image.format, digest)


def _tar(path, members):
    """A plain tar of ``members`` ((name, text, mode) or (name, None,
    link target))."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode='w', format=tarfile.GNU_FORMAT) \
            as archive:
        directories = set()
        for name, text, mode in members:
            parts = name.split('/')[:-1]
            for depth in range(1, len(parts) + 1):
                directory = '/'.join(parts[:depth])
                if directory not in directories:
                    directories.add(directory)
                    info = tarfile.TarInfo(directory)
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    archive.addfile(info)
            info = tarfile.TarInfo(name)
            if text is None:
                info.type, info.linkname = tarfile.SYMTYPE, mode
                archive.addfile(info)
                continue
            data = text.encode()
            info.size, info.mode = len(data), mode
            archive.addfile(info, io.BytesIO(data))
    data = buffer.getvalue()
    with open(path, 'wb') as f:
        f.write(data)
    return Image(path, 'tar', hashlib.sha256(data).hexdigest())


def data_tar(lab, token):
    return _tar(lab.path('images', 'fa-lab-data.tar'),
                [(MARKER_FILE, token + '\n', 0o644)])
